"""``/api/v1/namespaces/{ns}/actions[/{pkg}]/{name}``: action CRUD and listing.

Invoking (``POST``) is served by ``api/invoke.py`` on the same paths.
"""

from __future__ import annotations

import functools

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.api.errors import Endpoint
from wisp.api.inputs import json_object, paging, query_bool
from wisp.api.shapes import action_json, action_summary
from wisp.entities import check_name, split_qualifier
from wisp.models import DEFAULT_PACKAGE

PUT_THREADS = 64  # puts at once (each may wait for a build), apart from the shared pool


def action_key(request: Request) -> tuple[str, str]:
    """(package, name) of an action path; ``default`` is the no-package package."""
    return request.path_params.get("pkg", DEFAULT_PACKAGE), request.path_params["name"]


class ActionsApi:
    def __init__(self, ctx: ApiContext, invoke: Endpoint) -> None:
        self.ctx = ctx
        self._puts = anyio.CapacityLimiter(PUT_THREADS)
        self.invoke = invoke

    def routes(self) -> list[Route]:
        base = "/api/v1/namespaces/{ns}/actions"
        one = {"GET": self.get, "PUT": self.put, "DELETE": self.delete, "POST": self.invoke}
        return [
            route(base, GET=self.list_actions),
            route(base + "/", GET=self.list_actions),
            route(base + "/{pkg}/", GET=self.list_actions),
            route(base + "/{name}", **one),
            route(base + "/{pkg}/{name}", **one),
        ]

    async def list_actions(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        package = request.path_params.get("pkg")
        if package is not None:
            check_name("package", package)
        limit, skip = paging(request)
        entities = self.ctx.entities
        if query_bool(request, "count"):
            count = await run_in_threadpool(entities.count_actions, namespace.name, package)
            return JSONResponse({"actions": count})
        found = await run_in_threadpool(entities.list_actions, namespace.name, package, limit, skip)
        return JSONResponse([action_summary(a) for a in found])

    async def get(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        code = query_bool(request, "code", default=True)
        package, name = action_key(request)
        name, qualifier = split_qualifier(name)  # fn:0.0.2, fn:live: that version
        action, _ = await run_in_threadpool(
            self.ctx.entities.get_qualified, namespace.name, package, name, qualifier
        )
        return JSONResponse(action_json(action, code=code))

    async def put(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        overwrite = query_bool(request, "overwrite")
        doc = await json_object(request, self.ctx.entity_body_max)
        put = functools.partial(
            self.ctx.entities.put_action,
            namespace.name,
            *action_key(request),
            doc,
            overwrite=overwrite,
            subject=namespace.name,
        )
        # A put may wait minutes for a server-side build: on threads of its own, so
        # that builds never take the shared pool every other request needs.
        action = await anyio.to_thread.run_sync(put, limiter=self._puts)
        return JSONResponse(action_json(action))

    async def delete(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        action = await run_in_threadpool(
            self.ctx.entities.delete_action, namespace.name, *action_key(request)
        )
        return JSONResponse(action_json(action))
