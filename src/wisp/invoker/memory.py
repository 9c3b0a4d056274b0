"""An invoker that runs nothing: it fabricates records, for tests of what sits above
the invoker seam (API, web, gateway, triggers, console), as httpx's MockTransport.

    invoker = MemoryInvoker(writer, lambda call: Reply(result={"echo": call.args}))

The handler sees each ``Call`` and says what its record holds, and after how long.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wisp.errors import Unavailable
from wisp.ids import activation_id as new_activation_id
from wisp.invoker.admission import STOPPING
from wisp.invoker.base import Invocation, Invoker, Target
from wisp.invoker.records import qualifier_annotations
from wisp.models import SUCCESS, Activation
from wisp.observability.tracing import Trace
from wisp.store.writer import ActivationWriter


@dataclass
class Call:
    target: Target
    params: dict[str, Any]  # the caller's, before the target's defaults
    args: dict[str, Any]  # what a function would receive
    subject: str
    activation_id: str
    cause: str | None = None
    blocking: bool = False


@dataclass
class Reply:
    status: int = SUCCESS
    result: Any = None  # None: the call's args, echoed
    logs: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds until the record is written and ``done`` resolves


Handler = Callable[[Call], Reply]


def echo(call: Call) -> Reply:
    return Reply()


class MemoryInvoker(Invoker):
    def __init__(self, writer: ActivationWriter, handler: Handler = echo) -> None:
        super().__init__()
        self.writer = writer
        self.handler = handler
        self.calls: list[Call] = []
        self.started = False
        self.accepting = True
        self._timers: list[asyncio.TimerHandle] = []

    def reply(self, call: Call) -> Reply:
        return self.handler(call)

    async def start(self) -> None:
        self.started = True
        self.accepting = True

    def drain(self) -> None:
        self.accepting = False

    async def stop(self) -> None:
        self.drain()
        self.started = False
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def submit(
        self,
        target: Target,
        params: dict[str, Any],
        *,
        subject: str,
        cause: str | None = None,
        trace: Trace | None = None,
        blocking: bool = False,
        activation_id: str | None = None,
    ) -> Invocation:
        if not self.accepting:
            raise Unavailable(STOPPING)
        loop = asyncio.get_running_loop()
        args = {**target.parameters, **params}
        aid = activation_id or new_activation_id()
        call = Call(target, params, args, subject, aid, cause, blocking)
        self.calls.append(call)
        reply = self.reply(call)
        result = args if reply.result is None else reply.result
        action = target.action
        start = time.time_ns() // 1_000_000
        record = Activation(
            activation_id=call.activation_id,
            namespace=action.namespace,
            name=action.path,
            version=action.version,
            subject=subject,
            start=start,
            end=start,
            status_code=reply.status,
            result=result,
            logs=list(reply.logs),
            annotations=[
                {"key": "path", "value": action.fqn},
                {"key": "kind", "value": action.exec.kind},
                {"key": "waitTime", "value": 0},
                *qualifier_annotations(target),
            ],
            cause=cause,
            result_size=len(json.dumps(result)),
        )
        done: asyncio.Future[Activation] = loop.create_future()

        def finish() -> None:
            record.end = time.time_ns() // 1_000_000
            self.writer.submit(record)
            for observe in self.observers:
                observe(record)
            done.set_result(record)

        if reply.delay > 0:
            self._timers.append(loop.call_later(reply.delay, finish))
        else:
            finish()
        return Invocation(call.activation_id, done)
