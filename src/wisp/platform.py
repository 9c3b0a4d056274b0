"""The running platform: one object holding the settings and the core services.

The API, the CLI's ``wisp server`` and tests build one of these and pass it down;
nothing reaches for globals.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from wisp.builds import Builder
from wisp.config import Settings
from wisp.invoker.base import Invoker
from wisp.runtimes import RuntimeTable
from wisp.secrets import Vault
from wisp.store.base import Store
from wisp.store.writer import ActivationWriter

log = logging.getLogger("wisp.server")


@dataclass
class Platform:
    settings: Settings
    store: Store
    writer: ActivationWriter
    runtimes: RuntimeTable
    invoker: Invoker
    builder: Builder | None = None  # server-side builds for deploys whose code needs one
    vault: Vault | None = None  # named secrets, encrypted at rest (wisp.secrets)

    async def start(self) -> None:
        self.writer.start()
        await self.invoker.start()

    async def stop(self) -> None:
        await self.invoker.stop()
        left = self.writer.stop(self.settings.writer_stop_timeout)
        for record in left:  # none unless submitted after the journal kept the rest
            log.error("activation record not written at stop: %s", record.encoded().decode())
