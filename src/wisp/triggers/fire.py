"""Firing a trigger: invoke each active rule's action, record a trigger activation.

The trigger activation is OpenWhisk's: named after the trigger, its result is the
event's parameters, and each log line is a JSON object naming a rule, its action
and the activation it started (or why it could not). Each rule's activation has
the trigger activation's id as its ``cause``. A fire with no active rule records
nothing (the API answers 204).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wisp.entities import EntityService, split_qualifier
from wisp.errors import TooManyRequests, WispError
from wisp.ids import activation_id
from wisp.invoker.base import Invocation, Invoker
from wisp.models import RULE_ACTIVE, SUCCESS, Activation, Trigger
from wisp.store.base import Store
from wisp.store.writer import ActivationWriter
from wisp.triggers.service import as_dict, split_action

log = logging.getLogger("wisp.triggers")


@dataclass
class Fired:
    activation_id: str | None  # None: no active rule, nothing recorded
    invocations: list[Invocation] = field(default_factory=list)


class FireLimiter:
    """Fires per namespace per minute (OpenWhisk's ``firesPerMinute``), a fixed window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # namespace -> (minute, count)

    def admit(self, namespace: str) -> None:
        now = self.clock()
        minute = int(now // 60)
        window, count = self._windows.get(namespace, (minute, 0))
        if window != minute:
            count = 0
        if count >= self.per_minute:
            raise TooManyRequests(
                f"Too many trigger fires in the last minute (count: {count + 1}, "
                f"allowed: {self.per_minute}).",
                retry_after=max(1, math.ceil(60 - now % 60)),
            )
        self._windows[namespace] = (minute, count + 1)


class Firer:
    def __init__(
        self,
        store: Store,
        entities: EntityService,
        invoker: Invoker,
        writer: ActivationWriter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.entities = entities
        self.invoker = invoker
        self.writer = writer
        self.clock = clock

    async def fire(
        self,
        trigger: Trigger,
        params: dict[str, Any],
        *,
        subject: str,
        annotations: list[dict[str, Any]] | None = None,
    ) -> Fired:
        namespace = trigger.namespace
        rules = await asyncio.to_thread(self.store.rules_for_trigger, namespace, trigger.name)
        active = [r for r in rules if r.status == RULE_ACTIVE]
        if not active:
            return Fired(None)
        start = round(self.clock() * 1000)
        trigger_id = activation_id()
        event = {**as_dict(trigger.parameters), **params}
        logs: list[str] = []
        invocations: list[Invocation] = []
        for rule in active:
            line: dict[str, Any] = {
                "rule": f"{namespace}/{rule.name}",
                "action": f"{namespace}/{rule.action}",
            }
            try:
                package, qualified = split_action(rule.action)
                name, qualifier = split_qualifier(qualified)
                target = self.entities.cached_target(namespace, package, name, qualifier)
                if target is None:
                    target = await asyncio.to_thread(
                        self.entities.resolve_target, namespace, package, name, qualifier
                    )
                invocation = self.invoker.submit(target, event, subject=subject, cause=trigger_id)
            except WispError as exc:
                # A missing action or a namespace over its quota fails this rule only.
                line.update(statusCode=exc.status, success=False, error=exc.message)
            else:
                invocations.append(invocation)
                line.update(statusCode=0, success=True, activationId=invocation.activation_id)
            logs.append(json.dumps(line, separators=(",", ":")))
        self.writer.submit(
            Activation(
                activation_id=trigger_id,
                namespace=namespace,
                name=trigger.name,
                version=trigger.version,
                subject=subject,
                start=start,
                end=start,
                status_code=SUCCESS,
                result=event,
                logs=logs,
                annotations=[
                    {"key": "path", "value": f"{namespace}/{trigger.name}"},
                    {"key": "kind", "value": "trigger"},
                    *(annotations or []),
                ],
            )
        )
        return Fired(trigger_id, invocations)
