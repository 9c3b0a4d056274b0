"""Serving gateway routes: ``/gw/{namespace}/{path}``, and routes' own host names.

Per request: match the route, check the client's IP, answer CORS preflights, run
the access policy, take a rate-limit token, read the body within the route's
limit, then invoke through the same invoker (and activation records) as the REST
API. Route tables are cached per namespace and rebuilt when this process changes a
route, or after ROUTE_CACHE_TTL seconds (changes made through another replica).
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wisp.api.context import ApiContext
from wisp.api.errors import envelope, error_response, guarded
from wisp.api.inputs import read_body
from wisp.errors import Forbidden, NotFound, TooManyRequests
from wisp.gateway.ipfilter import Network, client_ip, parse_networks
from wisp.gateway.jwks import JwksLoader, JwksRules
from wisp.gateway.matching import CompiledRoute, RouteTable, compile_route
from wisp.gateway.ratelimit import TokenBucket
from wisp.models import GatewayRoute
from wisp.web.actions import run_and_respond
from wisp.web.request import request_arguments
from wisp.web.response import ExtraHeaders

PREFIX = "/gw"
ROUTE_CACHE_TTL = 5.0
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
NO_ROUTE = "No gateway route matches this path."


class Gateway:
    def __init__(self, ctx: ApiContext, trusted_proxies: list[Network]) -> None:
        self.ctx = ctx
        self.trusted = trusted_proxies
        self.loader = JwksLoader(JwksRules.from_settings(ctx.platform.settings))
        self._tables: dict[str, tuple[float, RouteTable]] = {}
        self._limiters: dict[tuple[Any, ...], TokenBucket] = {}
        # One endpoint for the router and for the fast path (wisp.web.fastpath).
        self.endpoint = guarded(self.serve)

    def routes(self) -> list[Route]:
        return [Route(PREFIX + "/{ns}/{path:path}", self.endpoint, methods=ALL_METHODS)]

    def invalidate(self, namespace: str) -> None:
        self._tables.pop(namespace, None)
        self._tables = {k: v for k, v in self._tables.items() if not k.startswith("host:")}

    # -- tables --------------------------------------------------------------
    async def _table(self, key: str, namespace: str | None, host: str | None) -> RouteTable:
        cached = self._tables.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        store = self.ctx.platform.store
        found = await run_in_threadpool(store.list_routes, namespace, host)
        table = RouteTable([self._compile(r) for r in found])
        self._tables[key] = (time.monotonic() + ROUTE_CACHE_TTL, table)
        return table

    def _compile(self, route: GatewayRoute) -> CompiledRoute:
        rate = route.config.get("rateLimit")
        limiter = None
        if rate:
            # Buckets outlive table rebuilds; a changed limit starts new buckets.
            key = (route.namespace, route.base_path, route.path, route.method, json.dumps(rate))
            limiter = self._limiters.get(key)
            if limiter is None:
                limiter = TokenBucket(rate["requests"], rate["per"], rate["burst"])
                self._limiters[key] = limiter
        return compile_route(route, limiter, self.loader)

    # -- serving -------------------------------------------------------------
    async def serve(self, request: Request) -> Response:
        namespace = request.path_params["ns"]
        table = await self._table(namespace, namespace, None)
        return await self.handle(request, table, "/" + request.path_params["path"])

    def host_fallback(self, default: ASGIApp) -> ASGIApp:
        """An ASGI app for requests no other route matched: routes with a host name."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await default(scope, receive, send)
                return
            request = Request(scope, receive)
            host = (request.headers.get("host") or "").split(":", 1)[0].lower()
            table = await self._table("host:" + host, None, host) if host else None
            if table is None or not table.routes:
                await default(scope, receive, send)
                return
            try:
                response = await self.handle(request, table, request.url.path)
            except Exception as exc:
                response = error_response(exc)
            await response(scope, receive, send)

        return app

    async def handle(self, request: Request, table: RouteTable, path: str) -> Response:
        compiled, params, others = table.match(path, request.method)
        if compiled is None:
            cors_of_path = next((c.cors for c in others if c.cors is not None), None)
            if cors_of_path is not None and cors_of_path.is_preflight(request):
                return cors_of_path.preflight(request)
            if others:
                allow = ", ".join(sorted({c.route.method for c in others}))
                return envelope(
                    405,
                    "The requested method is not allowed for this resource.",
                    "method_not_allowed",
                    {"Allow": allow},
                )
            raise NotFound(NO_ROUTE)
        cors = compiled.cors
        if cors is not None and cors.is_preflight(request):
            return cors.preflight(request)
        headers = ExtraHeaders(cors.response_headers(request) if cors is not None else None)
        return await self._call(request, compiled, params, headers)

    async def _call(
        self,
        request: Request,
        compiled: CompiledRoute,
        params: dict[str, str],
        headers: ExtraHeaders,
    ) -> Response:
        route = compiled.route
        # Parsed only when a rule needs it: most routes never look at the address.
        address = None
        if compiled.ip is not None or compiled.limiter is not None:
            address = client_ip(request, self.trusted)
        if compiled.ip is not None and not compiled.ip.permits(address):
            raise Forbidden(f"requests from {address} are not allowed on this route")
        identity = await compiled.policy.check(request)
        if compiled.limiter is not None:
            by_client = compiled.rate_by == "client" and identity.user is not None
            client = f"user:{identity.user}" if by_client else f"ip:{address}"
            wait = compiled.limiter.take(client)
            if wait:
                raise TooManyRequests(
                    "Too many requests: this route's rate limit is exhausted", wait
                )
        body = await read_body(request, compiled.max_body)
        entities = self.ctx.entities
        target = entities.cached_target(route.namespace, compiled.package, compiled.name)
        if target is None:
            try:
                target = await run_in_threadpool(
                    entities.resolve_target, route.namespace, compiled.package, compiled.name
                )
            except NotFound:
                raise NotFound(f"the route's function {route.action} does not exist") from None
        extra: dict[str, Any] = dict(params)
        if identity.user is not None:
            extra["__ow_user"] = identity.user
        if identity.claims is not None:
            extra["__ow_claims"] = identity.claims
        path = path_of(request)
        # The arguments are made in the call: once the invoker has them, this frame
        # does not keep them (and a large body in them) alive as well.
        return await run_and_respond(
            self.ctx,
            target,
            request_arguments(
                request, body, raw=False, path=path, final=target.parameters, extra=extra
            ),
            route.namespace,
            compiled.response_type,
            [],
            headers,
        )


def path_of(request: Request) -> str:
    path: str = request.scope["path"]  # not request.url: building a URL costs per request
    return path


def trusted_networks(setting: str) -> list[Network]:
    return parse_networks(setting.split(","), "WISP_TRUSTED_PROXIES")
