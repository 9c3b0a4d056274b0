"""The one place where errors become HTTP responses.

Every error is OpenWhisk's envelope ``{"error": message, "code": code}``. A
WispError carries its own status; Starlette's 404/405 are mapped alongside; anything
else is a bug in Wisp: logged with its traceback, answered with a short 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wisp.errors import StoreUnavailable, TooManyRequests, Unauthorized, Unavailable, WispError

log = logging.getLogger("wisp.api")

Endpoint = Callable[[Request], Awaitable[Response]]

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
_HTTP_MESSAGES = {
    404: "The requested resource does not exist.",
    405: "The requested method is not allowed for this resource.",
}


def envelope(
    status: int, message: str, code: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse({"error": message, "code": code}, status_code=status, headers=headers)


def error_response(exc: BaseException) -> Response:
    """The envelope for ``exc``; unexpected exceptions are logged and hidden."""
    if isinstance(exc, WispError):
        headers: dict[str, str] = {}
        if isinstance(exc, Unauthorized):
            headers["WWW-Authenticate"] = 'Basic realm="wisp"'
        elif isinstance(exc, (TooManyRequests, Unavailable, StoreUnavailable)):
            headers["Retry-After"] = str(exc.retry_after)
        return envelope(exc.status, exc.message, exc.code, headers)
    log.error("unexpected error while serving a request", exc_info=exc)
    return envelope(
        500, "Wisp failed to handle the request; the error is in the server log.", "internal"
    )


def guarded(endpoint: Endpoint) -> Endpoint:
    """Wrap an endpoint so no exception escapes as a traceback or a bare 500."""

    @functools.wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:
            return error_response(exc)

    return wrapper


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method) in our envelope."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = _HTTP_MESSAGES.get(status, exc.detail)
    headers = dict(exc.headers or {})
    return envelope(status, message, _HTTP_CODES.get(status, "error"), headers)
