"""The web console: server-rendered HTML (Jinja2), plain CSS, charts as inline SVG.

Nothing is built at run time and nothing is vendored: templates and the stylesheet
ship in the package; Jinja2 comes from the project's dependencies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from wisp.console.session import Signer, load_secret
from wisp.console.views import Console

if TYPE_CHECKING:
    from wisp.api.context import ApiContext
    from wisp.observability import Observability


def iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def console_routes(ctx: ApiContext, obs: Observability) -> list[BaseRoute]:
    settings = ctx.platform.settings
    secret = load_secret(settings.console_secret, settings.data_dir)
    console = Console(ctx, obs, Signer(secret))
    console.templates.env.filters["iso"] = iso
    return console.routes()


ENTRY_PATHS = ("/", "/ui")  # what people type; the console lives at /ui/


def console_entry(default: ASGIApp) -> ASGIApp:
    """Send ``/`` and ``/ui`` to the console; anything else to ``default`` (the 404).

    Wrapped inside the gateway's host fallback rather than routed, so that a gateway
    route on its own host name still owns that host's ``/``. The Location is a path:
    an absolute URL would be built from the Host header.
    """

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] in ENTRY_PATHS
            and scope["method"] in ("GET", "HEAD")
        ):
            await RedirectResponse("/ui/", status_code=307)(scope, receive, send)
            return
        await default(scope, receive, send)

    return app
