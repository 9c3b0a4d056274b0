"""The ASGI application: OpenWhisk's REST API plus operational endpoints.

Plain Starlette routes, one module per concept; handlers parse, authorise, call the
core (EntityService, the invoker, the activation writer) and shape the response.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from wisp.api.actions import ActionsApi
from wisp.api.activations import ActivationsApi
from wisp.api.asyncwork import AsyncWorkApi
from wisp.api.auth import Authenticator
from wisp.api.context import ApiContext, route
from wisp.api.errors import http_exception
from wisp.api.fastpath import InvokeFastPath
from wisp.api.invoke import InvokeApi
from wisp.api.namespaces import NamespacesApi, platform_limits
from wisp.api.observability import observability_routes
from wisp.api.packages import PackagesApi
from wisp.api.releases import ReleasesApi
from wisp.api.retention import PURGE_EVERY, retention_loop
from wisp.api.rules import RulesApi
from wisp.api.secrets import SecretsApi
from wisp.api.tracking import RequestTracking
from wisp.api.triggers import TriggersApi
from wisp.entities import EntityService
from wisp.gateway.api import gateway_routes
from wisp.invoker.deadletters import destinations
from wisp.observability import Observability
from wisp.observability.logs import AccessLog
from wisp.triggers.system import Triggers
from wisp.web.actions import WebActionsApi
from wisp.web.fastpath import PublicFastPath

if TYPE_CHECKING:
    from wisp.platform import Platform

DESCRIPTION = "Wisp: self-hosted serverless functions (OpenWhisk / DigitalOcean Functions API)"


def create_app(
    platform: Platform,
    entities: EntityService | None = None,
    *,
    purge_every: float = PURGE_EVERY,
) -> Starlette:
    """The Wisp API over ``platform``; its lifespan starts and stops the platform.

    Pass ``entities`` to share one EntityService (and its target cache) with other
    users of the platform, e.g. a trigger scheduler.
    """
    # Here, not at the top: the console's views import wisp.api, so importing the
    # console first (its charts, say) would otherwise meet this module half made.
    from wisp.console import console_entry, console_routes

    if entities is None:
        entities = EntityService(
            platform.store, platform.runtimes, platform.settings.limits, builder=platform.builder
        )
    ctx = ApiContext(platform=platform, entities=entities, auth=Authenticator(platform.store))
    obs = Observability.attach(platform)

    async def info(request: Request) -> Response:
        return JSONResponse(
            {
                "description": DESCRIPTION,
                "api_paths": ["/api/v1"],
                "runtimes": platform.runtimes.describe(),
                "limits": platform_limits(platform.settings, triggers.limiter),
            }
        )

    async def healthz(request: Request) -> Response:
        writer = platform.writer
        # Still 200 when degraded: the process is alive, restarting it would not help.
        return JSONResponse(
            {
                "status": "degraded" if writer.saturated else "ok",
                "isolation": platform.invoker.isolation,
                "writer": {
                    "pending": writer.pending,
                    "backlog": writer.backlog,
                    "saturated": writer.saturated,
                },
            }
        )

    triggers = Triggers.build(platform, entities)
    platform.invoker.deliver_dead_letters(
        destinations(entities, platform.invoker, triggers.firer)
    )
    gateway_api, gateway = gateway_routes(ctx)
    web = WebActionsApi(ctx)
    invoke = InvokeApi(ctx).invoke
    actions = ActionsApi(ctx, invoke)
    routes: list[BaseRoute] = [
        # .../actions/{name}/invokeConfig would match the action routes' {pkg}/{name}.
        *AsyncWorkApi(ctx).routes(),
        *ReleasesApi(ctx, actions.get, invoke).routes(),  # .../{name}/versions likewise
        # Actions early: routes are matched in order, and invoke is the hot path.
        *actions.routes(),
        route("/api/v1", GET=info),
        route("/api/v1/", GET=info),
        route("/healthz", GET=healthz),
        *observability_routes(ctx, obs),  # before activations/{id}: it has .../stream
        *console_routes(ctx, obs),
        *NamespacesApi(ctx, triggers.limiter).routes(),
        *PackagesApi(ctx).routes(),
        *SecretsApi(ctx).routes(),
        *ActivationsApi(ctx).routes(),
        *gateway_api,  # before web actions: it has OpenWhisk's /api/v1/web/whisk.system/apimgmt
        *web.routes(),
        *TriggersApi(ctx, triggers).routes(),
        *RulesApi(ctx, triggers).routes(),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await platform.start()
        await obs.start()
        purger = asyncio.create_task(retention_loop(platform, purge_every))
        triggers.scheduler.start()
        try:
            yield
        finally:
            await triggers.scheduler.stop()
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await platform.stop()
            await obs.stop()  # after the invoker: the last activations are rolled up

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_exception},
    )
    # Redirecting "/x/" to "/x" would send clients to an absolute URL built from the
    # Host header; the trailing-slash forms that clients use are routed explicitly.
    app.router.redirect_slashes = False
    # Routes served on their own host names see only what no other route matched.
    app.router.default = gateway.host_fallback(console_entry(app.router.default))
    settings = platform.settings
    access = AccessLog(settings.log_format) if settings.access_log == "on" else None
    public = PublicFastPath(app.build_middleware_stack(), web.endpoint, gateway.endpoint)
    stack = RequestTracking(public, access)
    app.middleware_stack = InvokeFastPath(stack, invoke, access)
    app.state.wisp = ctx
    app.state.gateway = gateway
    app.state.access_log = access
    app.state.observability = obs
    app.state.triggers = triggers
    return app
