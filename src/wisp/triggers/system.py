"""The triggers subsystem assembled for one platform: CRUD, firing, the fire limit
and the scheduler, sharing the app's EntityService (and its target cache)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wisp.entities import EntityService
from wisp.triggers.fire import FireLimiter, Firer
from wisp.triggers.scheduler import Clock, Scheduler
from wisp.triggers.service import TriggerService

if TYPE_CHECKING:
    from wisp.platform import Platform


@dataclass
class Triggers:
    service: TriggerService
    firer: Firer
    limiter: FireLimiter
    scheduler: Scheduler

    @classmethod
    def build(
        cls, platform: Platform, entities: EntityService, clock: Clock | None = None
    ) -> Triggers:
        clock = clock or Clock()
        settings = platform.settings
        firer = Firer(platform.store, entities, platform.invoker, platform.writer, clock.time)
        scheduler = Scheduler(
            platform.store,
            firer,
            interval=settings.scheduler_interval,
            hold=settings.limits.timeout_max / 1000,
            clock=clock,
        )
        return cls(
            service=TriggerService(platform.store, entities, clock.time),
            firer=firer,
            limiter=FireLimiter(settings.trigger_fires_per_minute, clock.time),
            scheduler=scheduler,
        )
