"""``GET /api/v1/namespaces/{ns}/activations/stream``: finished activations, pushed.

Server-Sent Events, usable from ``curl -N``: one ``activation`` event per finished
activation (its summary, as the list endpoint gives it) followed by one ``log``
event per log line. ``name`` filters like the list endpoint ('pkg/fn', 'pkg/').
Events are sent as the activation finishes: nothing polls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from wisp import codec
from wisp.api.activations import normalize_name
from wisp.api.context import ApiContext, route
from wisp.api.inputs import query_bool
from wisp.api.shapes import activation_summary
from wisp.models import Activation
from wisp.observability.events import EventBus, Subscription

HEARTBEAT = 15.0  # seconds between comments that keep proxies from closing the stream


def sse(event: str, data: object, event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: ".encode() + codec.dumps(data) + b"\n\n"


def activation_events(record: Activation, logs: bool = True) -> bytes:
    out = [sse("activation", activation_summary(record), record.activation_id)]
    if logs:
        base = {"activationId": record.activation_id, "name": record.name}
        out.extend(sse("log", {**base, "line": line}) for line in record.logs)
    return b"".join(out)


class StreamApi:
    def __init__(self, ctx: ApiContext, events: EventBus, heartbeat: float = HEARTBEAT) -> None:
        self.ctx = ctx
        self.events = events
        self.heartbeat = heartbeat

    def routes(self) -> list[Route]:
        return [route("/api/v1/namespaces/{ns}/activations/stream", GET=self.stream)]

    async def stream(self, request: Request) -> Response:
        namespace = await self.ctx.auth.namespace(request)
        name = request.query_params.get("name") or None
        if name is not None:
            name = normalize_name(name) or None
        logs = query_bool(request, "logs", True)
        subscription = self.events.subscribe(namespace.name, name)
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            self._events(subscription, logs), media_type="text/event-stream", headers=headers
        )

    async def _events(self, subscription: Subscription, logs: bool) -> AsyncIterator[bytes]:
        try:
            yield b": stream open\n\n"  # headers and a first byte at once: clients know it's live
            while True:
                try:
                    record = await asyncio.wait_for(subscription.queue.get(), self.heartbeat)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if record is None or subscription.closed:
                    return  # the server is stopping: the response ends, the client is told
                dropped = subscription.take_dropped()
                if dropped:
                    yield sse("dropped", {"count": dropped})
                yield activation_events(record, logs)
        finally:
            self.events.unsubscribe(subscription)
