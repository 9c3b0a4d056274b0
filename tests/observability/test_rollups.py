"""Rollups: in-memory sums, periodic flushes, and chart series read back."""

from __future__ import annotations

from wisp.errors import PlatformError
from wisp.models import Activation
from wisp.observability.rollups import BUCKET_MS, Point, Rollups
from wisp.store.memory import MemoryStore

NOW = 1_800_000_000_000 - 1_800_000_000_000 % 3_600_000 + 30 * BUCKET_MS  # mid-hour


def record(
    name: str,
    start: int,
    duration: int,
    status: int = 0,
    cold: bool = False,
    namespace: str = "guest",
    memory: int = 0,
) -> Activation:
    annotations = [{"key": "waitTime", "value": 0}, {"key": "cpuTime", "value": 1.5}]
    if cold:
        annotations.append({"key": "initTime", "value": 5})
    if memory:
        annotations.append({"key": "peakMemory", "value": memory})
    return Activation(
        "a" * 32,
        namespace,
        name,
        "0.0.1",
        namespace,
        start,
        start + duration,
        status,
        {},
        annotations=annotations,
    )


async def test_sums_survive_a_restart_and_read_as_a_series() -> None:
    store = MemoryStore()
    rollups = Rollups(store)
    for i in range(10):
        rollups.observe(
            record(
                "pkg/fn",
                NOW - 5 * BUCKET_MS,
                10 * (i + 1),
                cold=i == 0,
                memory=(i + 1) * 1024 * 1024,
            )
        )
    rollups.observe(record("pkg/fn", NOW - 5 * BUCKET_MS, 300, status=1))
    rollups.observe(record("pkg/other", NOW, 1))
    rollups.observe(record("pkg/fn", NOW, 1, namespace="else"))
    await rollups.flush()
    assert len(store.list_rollups("guest", None, 0, NOW + BUCKET_MS)) == 2

    restarted = Rollups(store)  # nothing in memory: all from the store
    points = restarted.series("guest", "pkg/fn", "1h", now=NOW)
    assert len(points) == 60
    busy = [p for p in points if p.count]
    assert len(busy) == 1
    point = busy[0].to_json()
    assert point["start"] == NOW - 5 * BUCKET_MS
    assert (point["count"], point["errors"], point["cold"]) == (11, 1, 1)
    assert point["memory"] == 10 * 1024 * 1024
    assert 25 <= point["p50"] <= 100  # durations 10..100 ms and one 300
    assert 100 <= point["p95"] <= 500
    whole = restarted.series("guest", None, "1h", now=NOW)
    assert sum(p.count for p in whole) == 12  # both functions, not the other namespace


async def test_unflushed_sums_are_in_the_series_and_kept_when_a_flush_fails() -> None:
    class Failing(MemoryStore):
        fail = True

        def insert_rollups(self, rows):
            if self.fail:
                raise PlatformError("database away")
            super().insert_rollups(rows)

    store = Failing()
    rollups = Rollups(store)
    rollups.observe(record("fn", NOW, 5))
    assert sum(p.count for p in rollups.series("guest", "fn", "1h", now=NOW)) == 1
    await rollups.flush()  # fails: the sums go back to memory
    rollups.observe(record("fn", NOW, 5))
    store.fail = False
    await rollups.flush()
    assert sum(r.count for r in store.list_rollups("guest", "fn", 0, NOW + BUCKET_MS)) == 2
    assert sum(p.count for p in rollups.series("guest", "fn", "1h", now=NOW)) == 2


def test_windows_have_steps_of_their_own() -> None:
    rollups = Rollups(MemoryStore())
    assert len(rollups.series("guest", None, "24h", now=NOW)) == 96
    assert len(rollups.series("guest", None, "7d", now=NOW)) == 84


def test_percentiles_of_an_empty_point_are_none() -> None:
    assert Point(0).percentile(0.5) is None
    assert Point(0).to_json()["avg"] is None
