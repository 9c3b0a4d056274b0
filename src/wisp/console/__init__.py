"""The web console: server-rendered HTML (Jinja2), plain CSS, charts as inline SVG.

Nothing is built at run time and nothing is vendored: templates and the stylesheet
ship in the package; Jinja2 comes from the project's dependencies.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

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
