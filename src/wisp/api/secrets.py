"""A namespace's secrets: ``GET /api/v1/namespaces/{ns}/secrets`` (names, sizes and
update times, never values), ``PUT .../secrets/{name}`` (body ``{"value": "..."}``,
write-only) and ``DELETE .../secrets/{name}``. Values are encrypted (wisp.secrets)
before they reach the store.
"""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.api.inputs import json_object
from wisp.errors import BadRequest, NotFound, Unavailable, UnsupportedFields
from wisp.models import StoredSecret
from wisp.secrets import Vault

SECRET_MAX = 64 * 1024  # bytes of one value


def secret_json(secret: StoredSecret) -> dict[str, object]:
    return {"name": secret.name, "size": secret.size, "updated": secret.updated}


class SecretsApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[Route]:
        base = "/api/v1/namespaces/{ns}/secrets"
        return [
            route(base, GET=self.list),
            route(base + "/{name}", PUT=self.put, DELETE=self.delete),
        ]

    @property
    def vault(self) -> Vault:
        vault = self.ctx.platform.vault
        if vault is None:
            raise Unavailable("this server has no master key configured for secrets")
        return vault

    async def list(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        found = await run_in_threadpool(self.ctx.platform.store.list_secrets, namespace.name)
        return JSONResponse([secret_json(s) for s in found])

    async def put(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        name = request.path_params["name"]
        body = await json_object(request, SECRET_MAX * 6 + 1024)
        unknown = [key for key in body if key != "value"]
        if unknown:
            raise UnsupportedFields(unknown, 'a secret takes only {"value": "..."}')
        value = body.get("value")
        if not isinstance(value, str):
            raise BadRequest('the body must be {"value": "..."} with the value as a string')
        if len(value.encode()) > SECRET_MAX:
            raise BadRequest(f"secret {name!r}: the value is over {SECRET_MAX} bytes")
        now = time.time_ns() // 1_000_000
        stored = await run_in_threadpool(self.vault.set, namespace.name, name, value, now)
        return JSONResponse(secret_json(stored))

    async def delete(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        name = request.path_params["name"]
        if not await run_in_threadpool(self.ctx.platform.store.delete_secret, namespace.name, name):
            raise NotFound(f"secret {name!r} does not exist in namespace {namespace.name}")
        return JSONResponse({"name": name, "deleted": True})
