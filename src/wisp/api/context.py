"""What every endpoint module needs, built once per app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wisp.api.auth import Authenticator
from wisp.api.errors import Endpoint, guarded
from wisp.entities import EntityService

if TYPE_CHECKING:
    from wisp.platform import Platform


@dataclass
class ApiContext:
    platform: Platform
    entities: EntityService
    auth: Authenticator

    @property
    def entity_body_max(self) -> int:
        """Bytes a package/action PUT may carry: base64 code plus room for the rest.

        The exact code limit is checked on the decoded code by EntityService.
        """
        limits = self.platform.settings.limits
        return limits.code_max * 4 // 3 + 2 * limits.payload_max + 64 * 1024


def route(path: str, **handlers: Endpoint) -> Route:
    """One route for a path, dispatching on the method (``GET=..., PUT=...``).

    One route per path (rather than one per method) lets a wrong method get a 405
    with the full ``Allow`` list.
    """
    by_method = {method.upper(): guarded(handler) for method, handler in handlers.items()}
    if "GET" in by_method:
        by_method["HEAD"] = by_method["GET"]

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    return Route(path, dispatch, methods=list(by_method))
