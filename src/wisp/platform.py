"""The running platform: one object holding the settings and the core services.

The API, the CLI's ``wisp server`` and tests build one of these and pass it down;
nothing reaches for globals.
"""

from __future__ import annotations

from dataclasses import dataclass

from wisp.builds import Builder
from wisp.config import Settings
from wisp.invoker.base import Invoker
from wisp.runtimes import RuntimeTable
from wisp.store.base import Store
from wisp.store.writer import ActivationWriter


@dataclass
class Platform:
    settings: Settings
    store: Store
    writer: ActivationWriter
    runtimes: RuntimeTable
    invoker: Invoker
    builder: Builder | None = None  # server-side builds for deploys whose code needs one

    async def start(self) -> None:
        self.writer.start()
        await self.invoker.start()

    async def stop(self) -> None:
        await self.invoker.stop()
        self.writer.stop()
