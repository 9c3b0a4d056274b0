"""An in-memory sandbox for unit tests of the pool and invoker: no processes."""

from __future__ import annotations

import asyncio
from typing import Any

from wisp.sandbox.base import Code, Instance, Outcome, Sandbox


class FakeInstance(Instance):
    def __init__(self, kind: str, number: int) -> None:
        self.kind = kind
        self.pid = number
        self.memory_mb = 0
        self.killed = False
        self.runs = 0
        self.code: Code | None = None
        self.network = "egress"

    @property
    def alive(self) -> bool:
        return not self.killed

    async def init(self, code: Code, timeout: float, log_limit: int) -> Outcome:
        self.code = code
        return Outcome(True)

    async def run(
        self, args: dict[str, Any], meta: dict[str, Any], timeout: float, log_limit: int
    ) -> Outcome:
        self.runs += 1
        delay = float(args.get("sleep", 0))
        if delay:
            await asyncio.sleep(delay)
        return Outcome(True, result={"pid": self.pid, **args}, size=2)

    async def kill(self) -> None:
        self.killed = True


class FakeSandbox(Sandbox):
    isolation = "none (fake)"

    def __init__(self) -> None:
        self.spawned: list[FakeInstance] = []

    async def spawn(self, kind: str, network: str = "egress") -> Instance:
        instance = FakeInstance(kind, len(self.spawned) + 1)
        instance.network = network
        self.spawned.append(instance)
        return instance
