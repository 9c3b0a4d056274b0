"""The scheduler: fire each tick of each enabled cron trigger exactly once.

Every replica runs one. Each polls the store for due ticks and races to claim
them with ``Store.claim_tick``, a compare-and-set of the trigger's
``next_run_at``: one replica wins, fires, and has already moved the schedule to
the following tick, so neither another replica nor a restart fires it again. A
crash between the claim and the submission loses that one tick (at most once is
the side chosen: a job run twice is worse than a job run late).

Missed ticks (the platform was down, or the tick is more than ``grace`` late):
with ``missed: latest`` (the default) the most recent one is fired once, its
trigger activation annotated ``late: true``; with ``missed: skip`` none is, and
the schedule resumes at the next tick.

``concurrency: skip`` holds the trigger in the store while its runs are in
flight (up to the longest function timeout, so a dead replica's hold expires);
a tick that finds it held is skipped. ``allow`` lets runs overlap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime

from wisp.errors import WispError
from wisp.invoker.base import Invocation
from wisp.models import Trigger
from wisp.store.base import Store
from wisp.triggers import cron
from wisp.triggers.fire import Firer

log = logging.getLogger("wisp.scheduler")

DEFAULT_GRACE = 10.0  # seconds a tick may be late and still count as on time
BATCH = 100  # due triggers handled per poll
HOLD_MARGIN = 60.0  # seconds a concurrency=skip hold outlives the longest timeout


class Clock:
    """Wall time and sleeping; tests substitute a fake one."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def iso(epoch_ms: int | None) -> str | None:
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Scheduler:
    def __init__(
        self,
        store: Store,
        firer: Firer,
        *,
        interval: float = 1.0,
        grace: float = DEFAULT_GRACE,
        hold: float = 15 * 60.0,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.firer = firer
        self.interval = interval
        self.grace = grace
        self.hold = hold + HOLD_MARGIN
        self.clock = clock or Clock()
        self.fired = 0  # ticks this replica fired (tests and metrics)
        self._task: asyncio.Task[None] | None = None
        self._releases: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="wisp-scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._releases) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                delay = await self.run_due()
            except Exception:
                # The store may be briefly unreachable; the next poll retries.
                log.exception("scheduler poll failed")
                delay = self.interval
            await self.clock.sleep(delay)

    async def run_due(self) -> float:
        """Fire what is due now; return the seconds until the next poll: the soonest
        next tick when it comes before the regular interval."""
        now = self.clock.time()
        horizon = round((now + self.interval) * 1000)
        due = await asyncio.to_thread(self.store.due_triggers, horizon, BATCH)
        now_ms = round(now * 1000)
        delay = self.interval
        for trigger in due:
            assert trigger.next_run_at is not None
            if trigger.next_run_at > now_ms:
                delay = min(delay, (trigger.next_run_at - now_ms) / 1000)
                continue
            try:
                await self._tick(trigger, now)
            except WispError as exc:
                log.error("trigger %s/%s: %s", trigger.namespace, trigger.name, exc.message)
        if len(due) == BATCH:
            delay = 0.0  # more may be due
        return max(delay, 0.0)

    async def _tick(self, trigger: Trigger, now: float) -> None:
        assert trigger.next_run_at is not None and trigger.cron is not None
        due = trigger.next_run_at
        now_ms = round(now * 1000)
        try:
            schedule = cron.parse(trigger.cron, trigger.timezone)
            following: int | None = round(schedule.next_after(now) * 1000)
        except cron.CronError as exc:
            # Validated on the way in; a row edited by hand must not stall the loop.
            log.error("trigger %s/%s: %s", trigger.namespace, trigger.name, exc.message)
            following = None
        tick = due
        late = now_ms - due > self.grace * 1000
        if late and following is not None:
            latest = schedule.latest_at_or_before(now, (due - 1) / 1000)
            tick = round(latest * 1000) if latest is not None else due
        run = following is not None and not (late and trigger.missed == "skip")
        hold = now_ms + round(self.hold * 1000) if trigger.concurrency == "skip" else None
        claim = await asyncio.to_thread(
            self.store.claim_tick,
            trigger.namespace,
            trigger.name,
            due,
            following,
            now_ms,
            hold,
            run=run,
        )
        name = f"{trigger.namespace}/{trigger.name}"
        if claim == "lost":
            return  # another replica has it, or it was changed meanwhile
        if claim == "busy":
            why = "missed while down" if not run else "its previous run is still going"
            log.info("trigger %s: tick %s skipped: %s", name, iso(tick), why)
            return
        annotations: list[dict[str, object]] = [{"key": "scheduled", "value": iso(tick)}]
        if late:
            annotations.append({"key": "late", "value": True})
        self.fired += 1
        try:
            fired = await self.firer.fire(
                trigger, {}, subject=trigger.namespace, annotations=annotations
            )
        except BaseException:
            if hold is not None:
                await asyncio.to_thread(
                    self.store.release_trigger, trigger.namespace, trigger.name, hold
                )
            raise
        if hold is not None:
            release = asyncio.create_task(self._release(trigger, hold, fired.invocations))
            self._releases.add(release)
            release.add_done_callback(self._releases.discard)

    async def _release(self, trigger: Trigger, hold: int, invocations: list[Invocation]) -> None:
        for invocation in invocations:
            await invocation.done
        await asyncio.to_thread(self.store.release_trigger, trigger.namespace, trigger.name, hold)
