"""Every HTTP request gets an id: the caller's ``X-Request-Id`` when it is sane, else
a new one. It is echoed in the response, set in ``REQUEST_ID`` for the log lines
written while handling the request (and recorded on the activations it starts),
and an access line per request closes it (unless ``WISP_ACCESS_LOG=off``). A
``traceparent`` is kept in the context too: whatever the request invokes (the API,
web functions, gateway routes, trigger fires) runs under it.

``InvokeFastPath`` does the same inline for invokes (see ``api/fastpath.py``).
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wisp.observability.logs import REQUEST_ID, AccessLog, request_id_from
from wisp.observability.tracing import INCOMING

HEADER = b"x-request-id"


class Tracked:
    """A request's id and trace headers, set in the context until ``close``."""

    __slots__ = ("_id_token", "_trace_token", "request_id")

    def __init__(self, scope: Scope) -> None:
        request_id = traceparent = tracestate = None
        for key, value in scope["headers"]:  # one pass, no Headers object
            if key == HEADER:
                request_id = value.decode("latin-1")
            elif key == b"traceparent":
                traceparent = value.decode("latin-1")
            elif key == b"tracestate":  # may be split over several header lines
                text = value.decode("latin-1")
                tracestate = text if tracestate is None else f"{tracestate},{text}"
        self.request_id = request_id_from(request_id)
        self._id_token = REQUEST_ID.set(self.request_id)
        self._trace_token = (
            INCOMING.set((traceparent, tracestate)) if traceparent is not None else None
        )

    def close(self) -> None:
        if self._trace_token is not None:
            INCOMING.reset(self._trace_token)
        REQUEST_ID.reset(self._id_token)


class RequestTracking:
    def __init__(self, app: ASGIApp, access: AccessLog | None = None) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = Tracked(scope)
        encoded = tracked.request_id.encode()
        started = time.perf_counter()
        status = 500  # what the server answers when the app fails before starting one

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # The platform's id wins over one a web function set itself: the
                # caller gets one X-Request-Id, the one in the logs and the record.
                headers = [h for h in message.get("headers", ()) if h[0].lower() != HEADER]
                message["headers"] = [*headers, (HEADER, encoded)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access is not None:
                self.access.line(
                    scope["method"], scope["path"], status, started, tracked.request_id
                )
            tracked.close()
