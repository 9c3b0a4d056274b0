"""The live stream: finished activations fanned out to subscribers (SSE).

``publish`` runs on the invocation path, so with nobody subscribed to a namespace
it is one dict lookup. Each subscriber has a bounded queue: a slow reader loses
events (counted, and told in the stream) rather than holding memory or slowing
invocations down.
"""

from __future__ import annotations

import asyncio
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
    queue: asyncio.Queue[Activation] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_MAX)
    )
    dropped: int = 0

    def offer(self, record: Activation) -> None:
        if not matches(record.name, self.name):
            return
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    def take_dropped(self) -> int:
        dropped, self.dropped = self.dropped, 0
        return dropped


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}

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
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.namespace)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.namespace]
