"""The event bus behind the live stream: filters, bounded queues, unsubscribing."""

from __future__ import annotations

from wisp.models import Activation
from wisp.observability import events
from wisp.observability.events import EventBus, matches


def record(name: str, namespace: str = "guest") -> Activation:
    return Activation("a" * 32, namespace, name, "0.0.1", namespace, 0, 1, 0, {})


def test_matches_paths_and_packages() -> None:
    assert matches("pkg/fn", None) and matches("pkg/fn", "pkg/fn") and matches("pkg/fn", "pkg/")
    assert not matches("pkg/fn", "pkg/f") and not matches("other/fn", "pkg/")


async def test_publish_reaches_only_matching_subscribers_of_the_namespace() -> None:
    bus = EventBus()
    bus.publish(record("fn"))  # nobody listens: nothing happens
    everything = bus.subscribe("guest")
    only_b = bus.subscribe("guest", "pkg/b")
    other = bus.subscribe("other")
    bus.publish(record("pkg/a"))
    bus.publish(record("pkg/b"))
    assert everything.queue.qsize() == 2
    assert only_b.queue.qsize() == 1 and (await only_b.queue.get()).name == "pkg/b"
    assert other.queue.empty()
    assert bus.subscribers == 3
    for subscription in (everything, only_b, other):
        bus.unsubscribe(subscription)
    assert bus.subscribers == 0


async def test_a_slow_reader_loses_events_and_is_told(monkeypatch) -> None:
    monkeypatch.setattr(events, "QUEUE_MAX", 2)
    bus = EventBus()
    slow = bus.subscribe("guest")
    for _ in range(5):
        bus.publish(record("fn"))
    assert slow.queue.qsize() == 2
    assert slow.take_dropped() == 3 and slow.take_dropped() == 0
