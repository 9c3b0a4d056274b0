"""A function's versions and rollback: ``.../actions/[pkg/]{name}/versions`` (GET) and
``.../actions/[pkg/]{name}/rollback`` (POST, body ``{"version": "0.0.2"}`` or none).

``.../actions/{name}/versions`` has the shape of ``.../actions/{pkg}/{name}``: when the
package ``name`` holds a function called ``versions`` (or ``rollback``), the path keeps
its OpenWhisk meaning (that function), and ``.../actions/default/{name}/...`` names the
versions of the function outside any package. So these routes come before the action
routes, and the invoke fast path leaves ``POST .../actions/{x}/rollback`` to them.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.actions import action_key
from wisp.api.context import ApiContext, route
from wisp.api.errors import Endpoint
from wisp.api.inputs import json_object
from wisp.api.shapes import version_json
from wisp.errors import BadRequest, UnsupportedFields

ROLLBACK_BODY_MAX = 4 * 1024
VERSIONS = "versions"
ROLLBACK = "rollback"


class ReleasesApi:
    def __init__(self, ctx: ApiContext, get_action: Endpoint, invoke: Endpoint) -> None:
        self.ctx = ctx
        self.get_action = get_action
        self.invoke = invoke

    def routes(self) -> list[Route]:
        actions = "/api/v1/namespaces/{ns}/actions"
        return [
            route(actions + "/{name}/" + VERSIONS, GET=self.versions),
            route(actions + "/{pkg}/{name}/" + VERSIONS, GET=self.versions),
            route(actions + "/{name}/" + ROLLBACK, POST=self.rollback),
            route(actions + "/{pkg}/{name}/" + ROLLBACK, POST=self.rollback),
        ]

    async def versions(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        if await self._is_function(request, namespace.name, VERSIONS):
            return await self.get_action(request)
        package, name = action_key(request)
        entities = self.ctx.entities
        current = await run_in_threadpool(entities.get_action, namespace.name, package, name)
        found = await run_in_threadpool(entities.list_versions, namespace.name, package, name)
        return JSONResponse([version_json(a, current.version) for a in found])

    async def rollback(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        if await self._is_function(request, namespace.name, ROLLBACK):
            return await self.invoke(request)
        body = await json_object(request, ROLLBACK_BODY_MAX)
        unknown = [key for key in body if key != "version"]
        if unknown:
            raise UnsupportedFields(unknown, 'a rollback takes only {"version": "0.0.2"}')
        version = body.get("version")
        if version is not None and not isinstance(version, str):
            raise BadRequest(f'version must be a string such as "0.0.2" (got {version!r})')
        action, changed = await run_in_threadpool(
            self.ctx.entities.rollback,
            namespace.name,
            *action_key(request),
            version,
            subject=namespace.name,
        )
        return JSONResponse({**version_json(action, action.version), "changed": changed})

    async def _is_function(self, request: Request, namespace: str, verb: str) -> bool:
        """Whether ``.../actions/{name}/{verb}`` names the function ``verb`` of package
        ``name`` (OpenWhisk's meaning); if so, points the request's path at it."""
        params = request.path_params
        if "pkg" in params:
            return False
        package = params["name"]
        store = self.ctx.platform.store
        if await run_in_threadpool(store.get_action, namespace, package, verb) is None:
            return False
        request.scope["path_params"] = {"ns": params["ns"], "pkg": package, "name": verb}
        return True
