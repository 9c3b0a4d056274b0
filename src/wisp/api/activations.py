"""``/api/v1/namespaces/{ns}/activations``: list, get, result, logs.

Reads go through the activation writer, which answers from records still waiting
for their group commit before asking the store: a GET right after an invoke finds it.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wisp.api.context import ApiContext, route
from wisp.api.inputs import paging, query_bool, query_int
from wisp.api.shapes import activation_result, activation_summary
from wisp.errors import ACTIVATION_NOT_FOUND, NotFound
from wisp.models import DEFAULT_PACKAGE, Activation


def normalize_name(name: str) -> str:
    """The store's action path ('pkg/fn' or 'fn'; 'pkg/' for a whole package) for a
    ``name`` filter. Clients also send '/ns/pkg/fn', 'ns/pkg/fn' or 'default/fn'."""
    parts = [part for part in name.split("/") if part]
    if name.startswith("/") or len(parts) == 3:
        parts = parts[1:]  # a leading namespace
    if len(parts) == 2 and parts[0] == DEFAULT_PACKAGE:
        parts = parts[1:]
    path = "/".join(parts)
    return path + "/" if name.endswith("/") and path else path


class ActivationsApi:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def routes(self) -> list[Route]:
        base = "/api/v1/namespaces/{ns}/activations"
        return [
            route(base, GET=self.list_activations),
            route(base + "/", GET=self.list_activations),
            route(base + "/{id}", GET=self.get),
            route(base + "/{id}/result", GET=self.result),
            route(base + "/{id}/logs", GET=self.logs),
        ]

    async def list_activations(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        limit, skip = paging(request)
        since = query_int(request, "since", None, 0)
        upto = query_int(request, "upto", None, 0)
        docs = query_bool(request, "docs")
        name = request.query_params.get("name") or None
        if name is not None:
            name = normalize_name(name) or None
        found = await run_in_threadpool(
            self.ctx.platform.writer.list,
            namespace.name,
            name=name,
            since=since,
            upto=upto,
            limit=limit,
            skip=skip,
        )
        shape = (lambda r: r.to_json()) if docs else activation_summary
        return JSONResponse([shape(r) for r in found])

    async def _record(self, request: Request) -> Activation:
        namespace = await self.ctx.auth.namespace(request)
        record = await run_in_threadpool(
            self.ctx.platform.writer.get, namespace.name, request.path_params["id"]
        )
        if record is None:
            raise NotFound(ACTIVATION_NOT_FOUND)
        return record

    async def get(self, request: Request) -> Response:
        return JSONResponse((await self._record(request)).to_json())

    async def result(self, request: Request) -> Response:
        return JSONResponse(activation_result(await self._record(request)))

    async def logs(self, request: Request) -> Response:
        return JSONResponse({"logs": (await self._record(request)).logs})
