"""Public requests straight to their endpoint: web functions and gateway routes.

Like the invoke fast path (wisp.api.fastpath), ``/api/v1/web/{ns}/...`` and
``/gw/{ns}/...`` skip Starlette's middleware stack and its scan of the route list,
which together cost about as much as the rest of a gateway request. The endpoints
are the same guarded ones the router holds, so answers are identical either way.
OpenWhisk's ``apimgmt`` calls (namespace ``whisk.system``), methods the routes do
not take and everything else go through the app as usual.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from wisp.api.errors import Endpoint

WEB_PREFIX = "/api/v1/web/"
GATEWAY_PREFIX = "/gw/"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Served by the apimgmt routes, ahead of the web actions' catch-all.
SYSTEM_NAMESPACES = frozenset({"whisk.system", "whisk-system"})


class PublicFastPath:
    def __init__(self, app: ASGIApp, web: Endpoint, gateway: Endpoint) -> None:
        self.app = app
        self.web = web
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._endpoint(scope)
        if endpoint is None:
            await self.app(scope, receive, send)
            return
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)

    def _endpoint(self, scope: Scope) -> Endpoint | None:
        """The endpoint for this request, with its path parameters set as the router
        would set them ({ns} is one segment, {path:path} the rest); None: not ours."""
        if scope["type"] != "http" or scope["method"] not in METHODS:
            return None
        path: str = scope["path"]
        if path.startswith(WEB_PREFIX):
            endpoint, rest = self.web, path[len(WEB_PREFIX) :]
        elif path.startswith(GATEWAY_PREFIX):
            endpoint, rest = self.gateway, path[len(GATEWAY_PREFIX) :]
        else:
            return None
        namespace, slash, rest = rest.partition("/")
        if not namespace or not slash:
            return None
        if endpoint is self.web and namespace in SYSTEM_NAMESPACES:
            return None
        scope["path_params"] = {"ns": namespace, "path": rest}
        return endpoint
