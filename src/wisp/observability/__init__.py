"""Observability: Prometheus metrics, the live activation stream, time-bucketed rollups,
and spans exported over OTLP when an endpoint is configured.

One ``Observability`` per app, attached to the platform's invoker as an observer
of finished activations and to the activation writer for its commit statistics.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from wisp.models import Activation
from wisp.observability.events import EventBus
from wisp.observability.metrics import Metrics, registry, render
from wisp.observability.otlp import SpanExport
from wisp.observability.rollups import Rollups

if TYPE_CHECKING:
    from wisp.platform import Platform


class Observability:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.metrics = Metrics()
        self.events = EventBus()
        self.registry = registry(self.metrics, platform, lambda: self.events.subscribers)
        self.rollups = Rollups(platform.store)
        endpoint = platform.settings.otlp_endpoint
        self.spans = SpanExport(endpoint) if endpoint else None

    @classmethod
    def attach(cls, platform: Platform) -> Observability:
        """Create one and hook it to ``platform``'s invoker and writer."""
        obs = cls(platform)
        platform.invoker.add_observer(obs.observe)
        platform.writer.on_batch = obs.metrics.observe_batch
        return obs

    def observe(self, record: Activation) -> None:
        self.metrics.observe(record)
        self.events.publish(record)
        self.rollups.observe(record)
        if self.spans is not None:
            self.spans.observe(record)

    def exposition(self) -> bytes:
        return render(self.registry)

    async def start(self) -> None:
        await self.rollups.start()

    async def stop(self) -> None:
        await self.rollups.stop()
        if self.spans is not None:
            await asyncio.to_thread(self.spans.shutdown)
