"""The live stream: finished activations fanned out to subscribers (SSE).

``publish`` runs on the invocation path, so with nobody subscribed to a namespace
it is one dict lookup. Each subscriber has a bounded queue: a slow reader loses
events (counted, and told in the stream) rather than holding memory or slowing
invocations down.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from wisp.models import Activation

QUEUE_MAX = 1000  # activations buffered per subscriber


def matches(name: str, wanted: str | None) -> bool:
    """``wanted`` is an action path ('pkg/fn', 'fn') or a whole package ('pkg/')."""
    if wanted is None:
        return True
    return name.startswith(wanted) if wanted.endswith("/") else name == wanted


@dataclass(eq=False)
class Subscription:
    namespace: str
    name: str | None  # filter, as ``matches`` takes it
    queue: asyncio.Queue[Activation | None] = field(  # None: the bus closed
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX)
    )
    dropped: int = 0
    closed: bool = False

    def offer(self, record: Activation) -> None:
        if not matches(record.name, self.name):
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    def close(self) -> None:
        """End the stream: a reader waiting on an empty queue wakes up and stops."""
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):  # a full one is read at once anyway
            self.queue.put_nowait(None)

    def take_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        self._closed = False

    @property
    def subscribers(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    def publish(self, record: Activation) -> None:
        """Hand ``record`` to its namespace's subscribers (event loop thread only)."""
        subscribers = self._subscribers.get(record.namespace)
        if subscribers:
            for subscription in subscribers:
                subscription.offer(record)

    def subscribe(self, namespace: str, name: str | None = None) -> Subscription:
        subscription = Subscription(namespace, name)
        self._subscribers.setdefault(namespace, set()).add(subscription)
        if self._closed:
            subscription.close()
        return subscription

    def close(self) -> None:
        """The server is stopping: end every stream, so that none holds the stop up."""
        self._closed = True
        for subscribers in self._subscribers.values():
            for subscription in subscribers:
                subscription.close()

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.namespace)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.namespace]
