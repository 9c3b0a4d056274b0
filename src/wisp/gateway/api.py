"""``/api/v1/namespaces/{ns}/routes``: declare, list and delete gateway routes.

``PUT`` (or ``POST``) a route document; ``overwrite=true`` to change an existing
route, ``dryRun=true`` to learn what a put would change (deployers plan with it).
``DELETE ?basePath=/shop[&path=/items/{id}][&method=GET]`` removes routes.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from wisp.api.context import ApiContext, route
from wisp.api.inputs import json_object, query_bool
from wisp.errors import BadRequest
from wisp.gateway.apimgmt import ApiManagement
from wisp.gateway.routes import RouteService, route_json
from wisp.gateway.serve import Gateway, trusted_networks

ROUTE_BODY_MAX = 256 * 1024


class RoutesApi:
    def __init__(self, ctx: ApiContext, service: RouteService) -> None:
        self.ctx = ctx
        self.service = service

    def routes(self) -> list[BaseRoute]:
        path = "/api/v1/namespaces/{ns}/routes"
        return [route(path, GET=self.list, PUT=self.put, POST=self.put, DELETE=self.delete)]

    async def list(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        found = await run_in_threadpool(self.service.list, namespace.name)
        return JSONResponse([route_json(r) for r in found])

    async def put(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        overwrite = query_bool(request, "overwrite")
        dry_run = query_bool(request, "dryRun")
        doc = await json_object(request, ROUTE_BODY_MAX)
        done = await run_in_threadpool(
            lambda: self.service.put(namespace.name, doc, overwrite=overwrite, dry_run=dry_run)
        )
        if dry_run:
            return JSONResponse(
                {
                    "exists": not done.created,
                    "changes": done.changes,
                    "route": route_json(done.route),
                }
            )
        body = route_json(done.route)
        if done.api_keys:
            body["apiKeys"] = done.api_keys  # shown once: only their hashes are kept
        return JSONResponse(body, status_code=200)

    async def delete(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        query = request.query_params
        base = query.get("basePath")
        if not base:
            raise BadRequest("query parameter 'basePath' is required")
        count = await run_in_threadpool(
            self.service.delete, namespace.name, base, query.get("path"), query.get("method")
        )
        return JSONResponse({"deleted": count})


def gateway_routes(ctx: ApiContext) -> tuple[list[BaseRoute], Gateway]:
    """The management APIs (Wisp's and OpenWhisk's apimgmt, which must come before the
    web actions' ``/api/v1/web/{ns}/...``) and the public gateway's routes, plus the
    Gateway: its ``host_fallback`` serves host names (wrap the router's default with
    it so it only sees requests nothing else matched), its ``endpoint`` the fast path."""
    settings = ctx.platform.settings
    gateway = Gateway(ctx, trusted_networks(settings.trusted_proxies))
    service = RouteService(
        ctx.platform.store,
        ctx.entities,
        settings.limits.payload_max,
        gateway.invalidate,
        gateway.loader.rules,
    )
    routes = [
        *ApiManagement(ctx, service).routes(),
        *RoutesApi(ctx, service).routes(),
        *gateway.routes(),
    ]
    return routes, gateway
