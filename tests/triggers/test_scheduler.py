"""The scheduler with a fake clock: the right second, once, restarts, missed ticks,
overlapping runs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.api.conftest import FakeInvoker, hello
from tests.triggers.conftest import FakeClock, utc
from wisp.entities import EntityService
from wisp.models import Trigger
from wisp.platform import Platform
from wisp.triggers.scheduler import Scheduler
from wisp.triggers.system import Triggers


def deploy(
    triggers: Triggers,
    entities: EntityService,
    cron: str = "*/5 * * * *",
    *,
    rule_status: str = "active",
    parameters: dict[str, Any] | None = None,
    **schedule: Any,
) -> None:
    entities.put_action("guest", "default", "job", hello())
    body: dict[str, Any] = {"schedule": {"cron": cron, **schedule}}
    if parameters is not None:
        body["parameters"] = parameters
    triggers.service.put_trigger("guest", "tick", body)
    triggers.service.put_rule(
        "guest", "every", {"trigger": "tick", "action": "job", "status": rule_status}
    )


def state(triggers: Triggers) -> Trigger:
    return triggers.service.get_trigger("guest", "tick")


async def test_fires_at_the_right_second_and_only_once(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    deploy(triggers, entities, parameters={"size": 3})
    assert state(triggers).next_run_at == utc(2025, 6, 1, 12, 5)
    scheduler = triggers.scheduler
    clock.set(2025, 6, 1, 12, 4, 59.5)
    delay = await scheduler.run_due()
    assert invoker.calls == []
    assert abs(delay - 0.5) < 1e-6  # wakes up for the tick, not a whole interval later
    clock.set(2025, 6, 1, 12, 5, 0)
    await scheduler.run_due()
    assert len(invoker.calls) == 1
    assert invoker.calls[0].params == {"size": 3}
    after = state(triggers)
    assert after.last_run_at == utc(2025, 6, 1, 12, 5)
    assert after.next_run_at == utc(2025, 6, 1, 12, 10)
    clock.set(2025, 6, 1, 12, 5, 0.9)
    assert await scheduler.run_due() == 1.0
    assert len(invoker.calls) == 1


async def test_a_scheduled_run_is_recorded_with_its_cause(
    triggers: Triggers,
    entities: EntityService,
    clock: FakeClock,
    invoker: FakeInvoker,
    platform: Platform,
) -> None:
    deploy(triggers, entities)
    clock.set(2025, 6, 1, 12, 5, 0)
    await triggers.scheduler.run_due()
    platform.writer.flush()
    records = platform.store.list_activations("guest")
    by_name = {r.name: r for r in records}
    trigger_record, action_record = by_name["tick"], by_name["job"]
    assert action_record.cause == trigger_record.activation_id
    assert {"key": "scheduled", "value": "2025-06-01T12:05:00.000Z"} in trigger_record.annotations
    assert not any(a["key"] == "late" for a in trigger_record.annotations)
    line = json.loads(trigger_record.logs[0])
    assert line["activationId"] == invoker.calls[0].activation_id
    assert line["rule"] == "guest/every" and line["action"] == "guest/job"


async def test_two_schedulers_on_one_store_fire_a_tick_once(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    deploy(triggers, entities)
    others = [Scheduler(triggers.scheduler.store, triggers.firer, clock=clock) for _ in range(3)]
    clock.set(2025, 6, 1, 12, 5, 0)
    await asyncio.gather(*(s.run_due() for s in [triggers.scheduler, *others]))
    assert len(invoker.calls) == 1
    assert sum(s.fired for s in [triggers.scheduler, *others]) == 1


async def test_a_restart_does_not_fire_a_tick_again(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    deploy(triggers, entities)
    clock.set(2025, 6, 1, 12, 5, 0)
    await triggers.scheduler.run_due()
    await triggers.scheduler.stop()
    # A new process: a new scheduler over the same database, half a minute later.
    restarted = Scheduler(triggers.scheduler.store, triggers.firer, clock=clock)
    clock.set(2025, 6, 1, 12, 5, 30)
    await restarted.run_due()
    assert len(invoker.calls) == 1
    clock.set(2025, 6, 1, 12, 10, 0)
    await restarted.run_due()
    assert len(invoker.calls) == 2


async def test_missed_ticks_fire_the_latest_once_marked_late(
    triggers: Triggers,
    entities: EntityService,
    clock: FakeClock,
    invoker: FakeInvoker,
    platform: Platform,
) -> None:
    deploy(triggers, entities)
    clock.set(2025, 6, 1, 13, 2, 0)  # down from 12:00:01 to 13:02: twelve ticks missed
    await triggers.scheduler.run_due()
    await triggers.scheduler.run_due()
    assert len(invoker.calls) == 1
    after = state(triggers)
    assert after.next_run_at == utc(2025, 6, 1, 13, 5)
    assert after.last_run_at == utc(2025, 6, 1, 13, 2)
    platform.writer.flush()
    [trigger_record] = platform.store.list_activations("guest", name="tick")
    assert {"key": "late", "value": True} in trigger_record.annotations
    assert {"key": "scheduled", "value": "2025-06-01T13:00:00.000Z"} in trigger_record.annotations


async def test_missed_ticks_can_be_skipped(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    deploy(triggers, entities, missed="skip")
    clock.set(2025, 6, 1, 13, 2, 0)
    await triggers.scheduler.run_due()
    assert invoker.calls == []
    after = state(triggers)
    assert after.next_run_at == utc(2025, 6, 1, 13, 5)
    assert after.last_run_at is None
    clock.set(2025, 6, 1, 13, 5, 0)
    await triggers.scheduler.run_due()
    assert len(invoker.calls) == 1


async def test_a_tick_a_little_late_is_on_time(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    deploy(triggers, entities, missed="skip")
    clock.set(2025, 6, 1, 12, 5, 9)  # within the grace
    await triggers.scheduler.run_due()
    assert len(invoker.calls) == 1


async def test_concurrency_skip_skips_ticks_while_a_run_is_going(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    invoker.delay = 60.0  # "slow" runs finish only when the test lets them
    deploy(triggers, entities, "* * * * *", concurrency="skip", parameters={"slow": True})
    clock.set(2025, 6, 1, 12, 1, 0)
    await triggers.scheduler.run_due()
    clock.set(2025, 6, 1, 12, 2, 0)
    await triggers.scheduler.run_due()
    assert len(invoker.calls) == 1
    assert state(triggers).next_run_at == utc(2025, 6, 1, 12, 3)
    for timer in invoker._timers:  # the first run ends
        timer._run()
    await asyncio.sleep(0.05)
    for _ in range(50):
        if state(triggers).running_until is None:
            break
        await asyncio.sleep(0.02)
    assert state(triggers).running_until is None
    clock.set(2025, 6, 1, 12, 3, 0)
    await triggers.scheduler.run_due()
    assert len(invoker.calls) == 2


async def test_concurrency_allow_lets_runs_overlap(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    invoker.delay = 60.0
    deploy(triggers, entities, "* * * * *", parameters={"slow": True})
    for minute in (1, 2, 3):
        clock.set(2025, 6, 1, 12, minute, 0)
        await triggers.scheduler.run_due()
    assert len(invoker.calls) == 3


async def test_disabled_triggers_and_inactive_rules_do_not_run(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    deploy(triggers, entities, rule_status="inactive")
    clock.set(2025, 6, 1, 12, 5, 0)
    await triggers.scheduler.run_due()
    assert invoker.calls == []  # the tick passed: no active rule, nothing ran
    assert state(triggers).next_run_at == utc(2025, 6, 1, 12, 10)
    triggers.service.set_rule_status("guest", "every", "active")
    triggers.service.set_enabled("guest", "tick", False)
    clock.set(2025, 6, 1, 12, 10, 0)
    await triggers.scheduler.run_due()
    assert invoker.calls == []
    # Enabled again at 12:12: the schedule resumes from now, without a late catch-up.
    clock.set(2025, 6, 1, 12, 12, 0)
    triggers.service.set_enabled("guest", "tick", True)
    assert state(triggers).next_run_at == utc(2025, 6, 1, 12, 15)
    await triggers.scheduler.run_due()
    assert invoker.calls == []
    clock.set(2025, 6, 1, 12, 15, 0)
    await triggers.scheduler.run_due()
    assert len(invoker.calls) == 1


async def test_the_loop_sleeps_until_the_next_tick(
    triggers: Triggers, entities: EntityService, clock: FakeClock, invoker: FakeInvoker
) -> None:
    deploy(triggers, entities)
    clock.set(2025, 6, 1, 12, 4, 59.75)
    triggers.scheduler.start()
    for _ in range(100):
        if clock.slept:
            break
        await asyncio.sleep(0.01)
    await triggers.scheduler.stop()
    assert abs(clock.slept[0] - 0.25) < 1e-6
