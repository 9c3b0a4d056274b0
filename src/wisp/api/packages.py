"""``/api/v1/namespaces/{ns}/packages[/{name}]``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.api.inputs import LIST_LIMIT_MAX, json_object, paging, query_bool
from wisp.api.shapes import package_json
from wisp.models import Action, Package


class PackagesApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[Route]:
        base = "/api/v1/namespaces/{ns}/packages"
        return [
            route(base, GET=self.list_packages),
            route(base + "/", GET=self.list_packages),
            route(base + "/{name}", GET=self.get, PUT=self.put, DELETE=self.delete),
        ]

    async def list_packages(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        limit, skip = paging(request)
        found = await run_in_threadpool(
            self.ctx.entities.list_packages, namespace.name, limit, skip
        )
        return JSONResponse([package_json(p) for p in found])

    async def get(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        name = request.path_params["name"]

        def load() -> tuple[Package, list[Action]]:
            entities = self.ctx.entities
            package = entities.get_package(namespace.name, name)
            return package, entities.list_actions(namespace.name, name, LIST_LIMIT_MAX, 0)

        package, actions = await run_in_threadpool(load)
        return JSONResponse(package_json(package, actions))

    async def put(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        overwrite = query_bool(request, "overwrite")
        doc = await json_object(request, self.ctx.entity_body_max)
        package = await run_in_threadpool(
            self.ctx.entities.put_package,
            namespace.name,
            request.path_params["name"],
            doc,
            overwrite=overwrite,
        )
        return JSONResponse(package_json(package))

    async def delete(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        package = await run_in_threadpool(
            self.ctx.entities.delete_package, namespace.name, request.path_params["name"]
        )
        return JSONResponse(package_json(package))
