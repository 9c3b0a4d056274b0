"""The Store contract for triggers and rules, on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading

from wisp.models import RULE_INACTIVE, Rule, Trigger
from wisp.store.base import Claim, Store


def trigger(name: str = "nightly", ns: str = "guest", **changes: object) -> Trigger:
    t = Trigger(
        namespace=ns,
        name=name,
        parameters=[{"key": "size", "value": 3}],
        annotations=[{"key": "note", "value": "ünïcode"}],
        version="0.0.1",
        updated=1_700_000_000_000,
        cron="0 3 * * *",
        timezone="Europe/Paris",
        concurrency="skip",
        missed="skip",
        next_run_at=1_000,
    )
    return dataclasses.replace(t, **changes)


def rule(name: str, trig: str = "nightly", ns: str = "guest", **changes: object) -> Rule:
    r = Rule(namespace=ns, name=name, trigger=trig, action="pkg/fn", updated=1_700_000_000_000)
    return dataclasses.replace(r, **changes)


def test_trigger_round_trip_list_and_delete(store: Store) -> None:
    store.put_trigger(trigger("b"), reschedule=True)
    store.put_trigger(trigger("a", cron=None, next_run_at=None), reschedule=True)
    store.put_trigger(trigger("a", ns="other"), reschedule=True)
    assert store.get_trigger("guest", "b") == trigger("b")
    assert store.get_trigger("guest", "a") == trigger("a", cron=None, next_run_at=None)
    assert store.get_trigger("guest", "zzz") is None
    assert [t.name for t in store.list_triggers("guest", 10, 0)] == ["a", "b"]
    assert [t.name for t in store.list_triggers("guest", 1, 1)] == ["b"]
    assert store.delete_trigger("guest", "a") is True
    assert store.delete_trigger("guest", "a") is False
    assert store.get_trigger("other", "a") is not None


def test_a_definition_update_keeps_the_scheduler_state(store: Store) -> None:
    store.put_trigger(trigger(), reschedule=True)
    assert store.claim_tick("guest", "nightly", 1_000, 2_000, 1_001, None) == "fired"
    store.put_trigger(trigger(parameters=[], version="0.0.2", next_run_at=1_000), reschedule=False)
    got = store.get_trigger("guest", "nightly")
    assert got is not None
    assert (got.parameters, got.version) == ([], "0.0.2")
    assert (got.next_run_at, got.last_run_at) == (2_000, 1_001)  # not put back to 1_000
    store.put_trigger(trigger(next_run_at=5_000), reschedule=True)
    got = store.get_trigger("guest", "nightly")
    assert got is not None and (got.next_run_at, got.last_run_at) == (5_000, 1_001)


def test_due_triggers_are_enabled_and_soonest_first(store: Store) -> None:
    store.put_trigger(trigger("late", next_run_at=3_000), reschedule=True)
    store.put_trigger(trigger("soon", ns="other", next_run_at=1_000), reschedule=True)
    store.put_trigger(trigger("off", next_run_at=500, enabled=False), reschedule=True)
    store.put_trigger(trigger("api", cron=None, next_run_at=None), reschedule=True)
    store.put_trigger(trigger("future", next_run_at=9_000), reschedule=True)
    assert [t.name for t in store.due_triggers(3_000, 10)] == ["soon", "late"]
    assert [t.name for t in store.due_triggers(3_000, 1)] == ["soon"]
    assert store.due_triggers(999, 10) == []


def test_a_tick_is_claimed_once(store: Store) -> None:
    store.put_trigger(trigger(), reschedule=True)
    assert store.claim_tick("guest", "nightly", 1_000, 2_000, 1_005, None) == "fired"
    assert store.claim_tick("guest", "nightly", 1_000, 2_000, 1_006, None) == "lost"
    assert store.claim_tick("guest", "missing", 1_000, 2_000, 1_006, None) == "lost"
    got = store.get_trigger("guest", "nightly")
    assert got is not None and (got.next_run_at, got.last_run_at) == (2_000, 1_005)
    # The last tick of a schedule leaves nothing to run.
    assert store.claim_tick("guest", "nightly", 2_000, None, 2_001, None) == "fired"
    assert store.due_triggers(10**12, 10) == []


def test_racing_claims_have_one_winner(store: Store) -> None:
    store.put_trigger(trigger(), reschedule=True)
    results: list[Claim] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(store.claim_tick("guest", "nightly", 1_000, 2_000, 1_001, None))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["fired"] + ["lost"] * 7


def test_a_hold_skips_overlapping_ticks_until_released_or_expired(store: Store) -> None:
    store.put_trigger(trigger(), reschedule=True)
    assert store.claim_tick("guest", "nightly", 1_000, 2_000, 1_000, 5_000) == "fired"
    # Still running at the next tick: skipped, and the schedule moves on.
    assert store.claim_tick("guest", "nightly", 2_000, 3_000, 2_000, 6_000) == "busy"
    got = store.get_trigger("guest", "nightly")
    assert got is not None
    assert (got.next_run_at, got.last_run_at, got.running_until) == (3_000, 1_000, 5_000)
    store.release_trigger("guest", "nightly", 4_444)  # someone else's hold: no effect
    assert store.claim_tick("guest", "nightly", 3_000, 4_000, 3_000, 7_000) == "busy"
    store.release_trigger("guest", "nightly", 5_000)
    assert store.claim_tick("guest", "nightly", 4_000, 5_500, 4_000, 8_000) == "fired"
    # A hold that was never released (its replica died) expires.
    assert store.claim_tick("guest", "nightly", 5_500, 9_000, 8_000, 12_000) == "fired"
    got = store.get_trigger("guest", "nightly")
    assert got is not None and got.running_until == 12_000


def test_a_tick_can_be_claimed_without_running_it(store: Store) -> None:
    store.put_trigger(trigger(last_run_at=None), reschedule=True)
    assert store.claim_tick("guest", "nightly", 1_000, 2_000, 1_500, None, run=False) == "busy"
    assert store.claim_tick("guest", "nightly", 1_000, 2_000, 1_500, None, run=False) == "lost"
    got = store.get_trigger("guest", "nightly")
    assert got is not None and (got.next_run_at, got.last_run_at) == (2_000, None)


def test_rules(store: Store) -> None:
    store.put_rule(rule("r2"))
    store.put_rule(rule("r1", status=RULE_INACTIVE))
    store.put_rule(rule("r3", trig="other"))
    store.put_rule(rule("r1", ns="elsewhere"))
    assert store.get_rule("guest", "r1") == rule("r1", status=RULE_INACTIVE)
    assert store.get_rule("guest", "nope") is None
    assert [r.name for r in store.list_rules("guest", 10, 0)] == ["r1", "r2", "r3"]
    assert [r.name for r in store.list_rules("guest", 2, 1)] == ["r2", "r3"]
    assert [r.name for r in store.rules_for_trigger("guest", "nightly")] == ["r1", "r2"]
    store.put_rule(rule("r1", action="fn", version="0.0.2"))
    assert store.get_rule("guest", "r1") == rule("r1", action="fn", version="0.0.2")
    assert store.delete_rule("guest", "r1") is True
    assert store.delete_rule("guest", "r1") is False
    assert [r.name for r in store.rules_for_trigger("guest", "nightly")] == ["r2"]
