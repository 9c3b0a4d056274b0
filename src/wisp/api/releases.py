"""A function's versions, rollback and aliases: ``.../actions/[pkg/]{name}/versions``
(GET), ``.../rollback`` (POST, body ``{"version": "0.0.2"}`` or none), ``.../aliases``
(GET) and ``.../aliases/{alias}`` (GET, PUT ``{"version": "0.0.2"}``, DELETE).

``.../actions/{name}/versions`` has the shape of ``.../actions/{pkg}/{name}``: when the
package ``name`` holds a function called ``versions`` (or ``rollback``), the path keeps
its OpenWhisk meaning (that function), and ``.../actions/default/{name}/...`` names the
versions of the function outside any package. So these routes come before the action
routes, and the invoke fast path leaves ``POST .../actions/{x}/rollback`` to them.
Alias names cannot be the words these paths use (``entities.RESERVED_ALIASES``).
"""

from __future__ import annotations

import asyncio
import functools
import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.actions import action_key
from wisp.api.context import ApiContext, route
from wisp.api.errors import Endpoint
from wisp.api.inputs import json_object
from wisp.api.shapes import alias_json, version_json
from wisp.errors import BadRequest, UnsupportedFields

ROLLBACK_BODY_MAX = 4 * 1024
VERSIONS = "versions"
ROLLBACK = "rollback"
ALIASES = "aliases"
WARM_WAIT = 10.0  # seconds a repoint or a rollback waits for an instance of its version
log = logging.getLogger("wisp.api")


class ReleasesApi:
    def __init__(self, ctx: ApiContext, get_action: Endpoint, invoke: Endpoint) -> None:
        self.ctx = ctx
        self.get_action = get_action
        self.invoke = invoke

    def routes(self) -> list[Route]:
        actions = "/api/v1/namespaces/{ns}/actions"
        one = {"GET": self.get_alias, "PUT": self.put_alias, "DELETE": self.delete_alias}
        return [
            route(actions + "/{name}/" + ALIASES, GET=self.list_aliases),
            route(actions + "/{pkg}/{name}/" + ALIASES, GET=self.list_aliases),
            route(actions + "/{name}/" + ALIASES + "/{alias}", **one),
            route(actions + "/{pkg}/{name}/" + ALIASES + "/{alias}", **one),
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
        aliases = await run_in_threadpool(entities.list_aliases, namespace.name, package, name)
        return JSONResponse([version_json(a, current.version, aliases) for a in found])

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
        warm = changed and await self._warm(namespace.name, *action_key(request), "")
        doc = {**version_json(action, action.version), "changed": changed, "warm": warm}
        return JSONResponse(doc)

    async def list_aliases(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        if await self._is_function(request, namespace.name, ALIASES):
            return await self.get_action(request)
        found = await run_in_threadpool(
            self.ctx.entities.list_aliases, namespace.name, *action_key(request)
        )
        return JSONResponse([alias_json(a) for a in found])

    async def get_alias(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        found = await run_in_threadpool(
            self.ctx.entities.get_alias,
            namespace.name,
            *action_key(request),
            request.path_params["alias"],
        )
        return JSONResponse(alias_json(found))

    async def put_alias(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        doc = await json_object(request, ROLLBACK_BODY_MAX)
        made = await run_in_threadpool(
            functools.partial(
                self.ctx.entities.put_alias,
                namespace.name,
                *action_key(request),
                request.path_params["alias"],
                doc,
                subject=namespace.name,
            )
        )
        warm = await self._warm(namespace.name, *action_key(request), made.alias)
        return JSONResponse({**alias_json(made), "warm": warm})

    async def delete_alias(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        gone = await run_in_threadpool(
            self.ctx.entities.delete_alias,
            namespace.name,
            *action_key(request),
            request.path_params["alias"],
        )
        return JSONResponse(alias_json(gone))

    async def _warm(self, namespace: str, package: str, name: str, qualifier: str) -> bool:
        """An instance of the version a name now runs, so its next call is not a cold start
        (the pool keeps instances per version). Best effort: the change stands anyway."""
        entities = self.ctx.entities
        try:
            target = await run_in_threadpool(
                entities.resolve_target, namespace, package, name, qualifier
            )
            return await asyncio.wait_for(self.ctx.platform.invoker.warm(target), WARM_WAIT)
        except Exception as exc:  # any failure only costs the next call a cold start
            log.warning("could not warm %s/%s:%s: %s", package, name, qualifier, exc)
            return False

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
