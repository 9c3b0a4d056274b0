"""Where dead activations go: a dead letter in the store, then the function's
``onFailure`` destination (another function, or a trigger) with
``{condition, request, response}``.

The invoker knows neither functions by name nor triggers; the API layer, which
does, sets ``deliver`` when it assembles the platform (``destinations``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from wisp.invoker.retries import Destination
from wisp.models import DeadLetter
from wisp.store.base import Store

if TYPE_CHECKING:
    from wisp.entities import EntityService
    from wisp.invoker.base import Invoker
    from wisp.triggers.fire import Firer

log = logging.getLogger("wisp.invoker")

# (namespace, destination, payload, cause: the dead activation's id)
Deliver = Callable[[str, Destination, dict[str, Any], str], Awaitable[None]]


def payload(letter: DeadLetter) -> dict[str, Any]:
    """What an onFailure destination receives."""
    return {
        "condition": letter.reason,
        "activationId": letter.activation_id,
        "function": letter.name,
        "attempts": letter.attempts,
        "request": letter.request,
        "response": letter.response,
    }


class DeadLetters:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.deliver: Deliver | None = None

    async def add(self, letter: DeadLetter, destination: Destination | None) -> None:
        """``keep``, then ``send``."""
        await self.keep(letter)
        await self.send(letter, destination)

    async def keep(self, letter: DeadLetter) -> None:
        """Store ``letter`` (listed, redriven, purged through the API). Never raises but
        a cancellation: a store failure is logged."""
        try:
            await asyncio.to_thread(self.store.put_dead_letter, letter)
        except Exception:
            log.exception("could not store the dead letter of %s", letter.activation_id)

    async def send(self, letter: DeadLetter, destination: Destination | None) -> None:
        """Deliver ``letter`` to the onFailure destination. Never raises: a failing
        destination is logged, the letter is kept."""
        if destination is None or self.deliver is None:
            return
        try:
            await self.deliver(letter.namespace, destination, payload(letter), letter.activation_id)
        except Exception as exc:
            log.warning(
                "onFailure of %s (%s) failed: %s",
                letter.activation_id,
                destination.to_json(),
                getattr(exc, "message", None) or exc,
            )


def destinations(entities: EntityService, invoker: Invoker, firer: Firer) -> Deliver:
    """Deliver to a function (a new asynchronous invocation, caused by the dead one)
    or fire a trigger of the dead activation's namespace."""
    from wisp.triggers.service import split_action

    async def deliver(
        namespace: str, destination: Destination, body: dict[str, Any], cause: str
    ) -> None:
        if destination.function is not None:
            package, name = split_action(destination.function)
            target = entities.cached_target(namespace, package, name)
            if target is None:
                target = await asyncio.to_thread(entities.resolve_target, namespace, package, name)
            invoker.submit(target, body, subject=namespace, cause=cause)
            return
        assert destination.trigger is not None
        trigger = await asyncio.to_thread(firer.store.get_trigger, namespace, destination.trigger)
        if trigger is None:
            raise LookupError(f"trigger {destination.trigger!r} does not exist")
        await firer.fire(trigger, body, subject=namespace)

    return deliver
