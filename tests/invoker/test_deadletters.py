"""Dead letters: kept in the store, then delivered to the onFailure destination."""

from __future__ import annotations

from typing import Any

from wisp.invoker.deadletters import DeadLetters
from wisp.invoker.retries import Destination
from wisp.models import DeadLetter
from wisp.store.memory import MemoryStore


def letter() -> DeadLetter:
    return DeadLetter(
        activation_id="a" * 32,
        namespace="guest",
        name="jobs/work",
        version="0.0.1",
        reason="RetriesExhausted",
        created=1,
        attempts=3,
        request={"params": {"n": 1}},
        response={"status": "action developer error", "result": {"error": "boom"}},
    )


async def test_a_dead_letter_is_stored_then_delivered() -> None:
    store = MemoryStore()
    sent: list[tuple[str, Destination, dict[str, Any], str]] = []

    async def deliver(ns: str, dest: Destination, body: dict[str, Any], cause: str) -> None:
        sent.append((ns, dest, body, cause))

    sink = DeadLetters(store)
    sink.deliver = deliver
    await sink.add(letter(), Destination(function="ops/alert"))
    assert store.get_dead_letter("guest", "a" * 32) == letter()
    [(ns, dest, body, cause)] = sent
    assert (ns, dest, cause) == ("guest", Destination(function="ops/alert"), "a" * 32)
    assert body["condition"] == "RetriesExhausted"
    assert body["request"] == {"params": {"n": 1}}
    assert body["response"]["result"] == {"error": "boom"}


async def test_a_failing_destination_keeps_the_letter() -> None:
    store = MemoryStore()

    async def deliver(ns: str, dest: Destination, body: dict[str, Any], cause: str) -> None:
        raise LookupError("trigger 'gone' does not exist")

    sink = DeadLetters(store)
    sink.deliver = deliver
    await sink.add(letter(), Destination(trigger="gone"))  # does not raise
    assert store.get_dead_letter("guest", "a" * 32) is not None
    await sink.add(letter(), None)  # no destination: only kept
