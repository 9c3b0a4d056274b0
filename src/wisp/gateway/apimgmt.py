"""OpenWhisk's API-gateway management calls, served by Wisp's gateway routes.

OpenWhisk exposes its gateway through three web actions of the system namespace,
``/api/v1/web/whisk.system/apimgmt/{createApi,getApi,deleteApi}[.http]`` (the nim
CLI spells it ``whisk-system``), which the ``openwhisk`` npm client
(``ow.routes``) and ``wsk api`` call with the caller's own Basic auth:

- ``POST createApi`` ``{"apidoc": {gatewayBasePath, gatewayPath, gatewayMethod,
  action: {name, namespace, ...}}}`` with ``?responsetype=`` → the API of that
  base path;
- ``GET getApi?basepath=&relpath=&operation=`` → ``{"apis": [...]}``;
- ``DELETE deleteApi?basepath=&relpath=&operation=``.

An "API" is OpenWhisk's name for the routes that share a base path; it is shown
as OpenWhisk shows it, ``{id, key, value: {gwApiUrl, apidoc: <swagger 2.0>}}``,
where ``gwApiUrl`` + the relative path is the public URL of a route.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from wisp.api.context import ApiContext, route
from wisp.api.inputs import json_object
from wisp.errors import BadRequest, Forbidden
from wisp.gateway.routes import RouteService
from wisp.models import DEFAULT_PACKAGE, GatewayRoute

SYSTEM_NAMESPACES = ("whisk.system", "whisk-system")
APIDOC_MAX = 256 * 1024
DEFAULT_RESPONSE_TYPE = "json"  # what OpenWhisk's createApi uses when none is given


class ApiManagement:
    def __init__(self, ctx: ApiContext, service: RouteService) -> None:
        self.ctx = ctx
        self.service = service

    def routes(self) -> list[BaseRoute]:
        out: list[BaseRoute] = []
        # The npm client leaves the extension off; wsk and nim send .http.
        for system in SYSTEM_NAMESPACES:
            for ext in ("", ".http"):
                prefix = f"/api/v1/web/{system}/apimgmt"
                out += [
                    route(f"{prefix}/createApi{ext}", POST=self.create, PUT=self.create),
                    route(f"{prefix}/getApi{ext}", GET=self.get),
                    route(f"{prefix}/deleteApi{ext}", DELETE=self.delete),
                ]
        return out

    async def create(self, request: Request) -> Response:
        namespace = (await self.ctx.auth.namespace(request)).name
        apidoc = _apidoc(await json_object(request, APIDOC_MAX))
        doc = {
            "basePath": _text(apidoc, "gatewayBasePath"),
            "path": _text(apidoc, "gatewayPath"),
            "method": _text(apidoc, "gatewayMethod").upper(),
            "function": _function(apidoc.get("action"), namespace),
            "responseType": request.query_params.get("responsetype") or DEFAULT_RESPONSE_TYPE,
        }
        # createApi replaces an existing route of the same base path, path and method.
        done = await run_in_threadpool(lambda: self.service.put(namespace, doc, overwrite=True))
        routes = await run_in_threadpool(self.service.list, namespace)
        same_base = [r for r in routes if r.base_path == done.route.base_path]
        return JSONResponse(_cli_api(self._host(request), namespace, same_base))

    async def get(self, request: Request) -> Response:
        namespace = (await self.ctx.auth.namespace(request)).name
        query = request.query_params
        base, relpath = query.get("basepath"), query.get("relpath")
        operation = (query.get("operation") or "").upper()
        routes = await run_in_threadpool(self.service.list, namespace)
        chosen = [
            r
            for r in routes
            if (not base or r.base_path == base)
            and (not relpath or r.path == relpath)
            and (not operation or r.method == operation)
        ]
        host = self._host(request)
        bases = sorted({r.base_path for r in chosen})
        apis = [_cli_api(host, namespace, [r for r in chosen if r.base_path == b]) for b in bases]
        return JSONResponse({"apis": apis})

    async def delete(self, request: Request) -> Response:
        namespace = (await self.ctx.auth.namespace(request)).name
        query = request.query_params
        base = query.get("basepath")
        if not base:
            raise BadRequest("query parameter 'basepath' is required")
        relpath = query.get("relpath") or None
        operation = query.get("operation") or None
        await run_in_threadpool(self.service.delete, namespace, base, relpath, operation)
        return JSONResponse({})

    def _host(self, request: Request) -> str:
        # The configured public address if there is one; otherwise the one the
        # client reached, so the URLs it gets back work from where it is.
        configured = self.ctx.platform.settings.api_host
        return (configured or str(request.base_url)).rstrip("/")


def _apidoc(body: Mapping[str, Any]) -> Mapping[str, Any]:
    apidoc = body.get("apidoc")
    if isinstance(apidoc, str):  # OpenWhisk also takes the document as a JSON string
        try:
            apidoc = json.loads(apidoc)
        except ValueError:
            raise BadRequest("apidoc is not valid JSON") from None
    if not isinstance(apidoc, Mapping):
        raise BadRequest("apidoc is required: an object with gatewayBasePath, gatewayPath, ...")
    if "swagger" in apidoc:
        raise BadRequest(
            "apidoc.swagger is not supported; create one route at a time with "
            "gatewayBasePath, gatewayPath, gatewayMethod and action"
        )
    return apidoc


def _text(apidoc: Mapping[str, Any], key: str) -> str:
    value = apidoc.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"apidoc.{key} is required and must be a string")
    return value


def _function(action: Any, namespace: str) -> str:
    if not isinstance(action, Mapping):
        raise BadRequest("apidoc.action is required: an object with name and namespace")
    name = action.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("apidoc.action.name is required and must be a string")
    owner = str(action.get("namespace") or "_").partition("/")[0]
    if owner not in ("_", namespace):
        # A route runs its function with the route owner's rights, so it may only
        # point at the owner's own functions.
        raise Forbidden(f"a route can only run functions of namespace {namespace!r}")
    return name.strip("/")


def _cli_api(host: str, namespace: str, routes: list[GatewayRoute]) -> dict[str, Any]:
    base = routes[0].base_path
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        package, _, name = r.action.rpartition("/")
        package = package or DEFAULT_PACKAGE
        extension = str(r.config.get("responseType", "http"))
        operation = r.method.lower()
        paths.setdefault(r.path, {})[operation] = {
            "operationId": f"{operation}{r.path}",
            "responses": {"default": {"description": "Default response"}},
            "x-openwhisk": {
                "namespace": namespace,
                "package": package,
                "action": name,
                "url": f"{host}/api/v1/web/{namespace}/{package}/{name}.{extension}",
            },
        }
    return {
        "id": f"API:{namespace}:{base}",
        "key": f"{namespace}:{base}",
        "value": {
            "namespace": namespace,
            "gwApiActivated": True,
            "tenantId": namespace,
            "gwApiUrl": f"{host}/gw/{namespace}{base.rstrip('/')}",
            "apidoc": {
                "swagger": "2.0",
                "basePath": base,
                "info": {"title": base, "version": "1.0.0"},
                "paths": paths,
            },
        },
    }
