"""Serving gateway routes: ``/gw/{namespace}/{path}``, and routes' own host names.

Per request: match the route, check the client's IP, answer CORS preflights, take
a rate-limit token (by IP; by client after the policy), run the access policy,
read the body within the route's limit, then invoke through the same invoker (and
activation records) as the REST API. A client address that failed a Basic check
too often on a route is refused before any password is hashed.

Route tables are cached per namespace and host name (LRU, at most TABLES_MAX) and
rebuilt when this process changes a route, or after ROUTE_CACHE_TTL seconds (changes
made through another replica). Which namespaces and host names have routes at all is
one query per ROUTE_CACHE_TTL: a request for any other (a made-up ``Host`` header,
``/gw/nobody/...``) costs no query and no cache entry.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wisp.api.context import ApiContext
from wisp.api.errors import envelope, error_response, guarded
from wisp.api.inputs import read_body
from wisp.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from wisp.gateway.ipfilter import Network, client_ip, parse_networks
from wisp.gateway.jwks import JwksLoader, JwksRules
from wisp.gateway.matching import CompiledRoute, RouteTable, compile_route
from wisp.gateway.policies import PasswordChecker
from wisp.gateway.ratelimit import TokenBucket
from wisp.models import GatewayRoute
from wisp.web.actions import run_and_respond
from wisp.web.request import request_arguments
from wisp.web.response import ExtraHeaders

PREFIX = "/gw"
ROUTE_CACHE_TTL = 5.0
TABLES_MAX = 1024  # route tables cached (per namespace and per host name)
# Failed Basic checks a client address may make on one route: a burst, then one every
# 6 seconds (10 a minute); past it, 429 before any password is hashed.
FAILURES_BURST = 10
FAILURES_PER_MINUTE = 10
TOO_MANY_FAILURES = "Too many failed sign-in attempts on this route; retry later"
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
NO_ROUTE = "No gateway route matches this path."


class Gateway:
    def __init__(self, ctx: ApiContext, trusted_proxies: list[Network]) -> None:
        self.ctx = ctx
        self.trusted = trusted_proxies
        self.loader = JwksLoader(JwksRules.from_settings(ctx.platform.settings))
        self.checker = PasswordChecker()
        self._tables: OrderedDict[str, tuple[float, RouteTable]] = OrderedDict()
        self._owners: tuple[float, frozenset[str]] = (-math.inf, frozenset())
        self._owners_lock = asyncio.Lock()
        self._limiters: dict[tuple[Any, ...], TokenBucket] = {}
        self._failures = TokenBucket(FAILURES_PER_MINUTE, 60, FAILURES_BURST)
        # One endpoint for the router and for the fast path (wisp.web.fastpath).
        self.endpoint = guarded(self.serve)

    def routes(self) -> list[Route]:
        return [Route(PREFIX + "/{ns}/{path:path}", self.endpoint, methods=ALL_METHODS)]

    def invalidate(self, namespace: str) -> None:
        self._tables.pop(namespace, None)
        for key in [k for k in self._tables if k.startswith("host:")]:
            del self._tables[key]
        self._owners = (-math.inf, frozenset())

    @property
    def cached_tables(self) -> int:
        return len(self._tables)

    # -- tables --------------------------------------------------------------
    async def _has_routes(self, key: str) -> bool:
        """Whether a namespace (``key`` = its name) or a host name (``host:`` + it) has
        any route, from one query per ROUTE_CACHE_TTL whatever the keys asked for."""
        expires, owners = self._owners
        if expires <= time.monotonic():
            async with self._owners_lock:  # concurrent requests share one query
                expires, owners = self._owners
                if expires <= time.monotonic():
                    pairs = await run_in_threadpool(self.ctx.platform.store.route_owners)
                    owners = frozenset(
                        [ns for ns, _ in pairs] + [f"host:{host}" for _, host in pairs if host]
                    )
                    self._owners = (time.monotonic() + ROUTE_CACHE_TTL, owners)
        return key in owners

    async def _table(self, key: str, namespace: str | None, host: str | None) -> RouteTable:
        cached = self._tables.get(key)
        if cached is not None and cached[0] > time.monotonic():
            self._tables.move_to_end(key)
            return cached[1]
        if not await self._has_routes(key):
            return RouteTable([])  # not cached: the index already answers for it
        store = self.ctx.platform.store
        found = await run_in_threadpool(store.list_routes, namespace, host)
        table = RouteTable([self._compile(r) for r in found])
        self._tables[key] = (time.monotonic() + ROUTE_CACHE_TTL, table)
        self._tables.move_to_end(key)
        while len(self._tables) > TABLES_MAX:
            self._tables.popitem(last=False)
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
        return compile_route(route, limiter, self.loader, self.checker)

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
        policy, limiter = compiled.policy, compiled.limiter
        # Parsed only when a rule needs it: most routes never look at the address.
        address = None
        if compiled.ip is not None or limiter is not None or policy.counts_failures:
            address = client_ip(request, self.trusted)
        if compiled.ip is not None and not compiled.ip.permits(address):
            raise Forbidden(f"requests from {address} are not allowed on this route")
        # Limits are checked before the policy runs (a Basic check costs a hash), and
        # a failed check costs the client a token like any other request.
        by_ip = f"ip:{address}"
        if limiter is not None:
            by_address = compiled.rate_by == "ip"
            wait = limiter.take(by_ip) if by_address else limiter.peek(by_ip)
            if wait:
                raise TooManyRequests(
                    "Too many requests: this route's rate limit is exhausted", wait
                )
        failures = f"{route.namespace} {route.method} {route.base_path}{route.path} {address}"
        if policy.counts_failures:
            wait = self._failures.peek(failures)
            if wait:
                raise TooManyRequests(TOO_MANY_FAILURES, wait)
        try:
            identity = await policy.check(request)
        except Unauthorized:
            if policy.counts_failures:
                self._failures.take(failures)
            if limiter is not None and compiled.rate_by != "ip":
                limiter.take(by_ip)
            raise
        if limiter is not None and compiled.rate_by != "ip":
            client = f"user:{identity.user}" if identity.user is not None else by_ip
            wait = limiter.take(client)
            if wait:
                raise TooManyRequests(
                    "Too many requests: this route's rate limit is exhausted", wait
                )
        body = await read_body(request, compiled.max_body)
        entities = self.ctx.entities
        where = (route.namespace, compiled.package, compiled.name, compiled.qualifier)
        target = entities.cached_target(*where)
        if target is None:
            try:
                target = await run_in_threadpool(entities.resolve_target, *where)
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
