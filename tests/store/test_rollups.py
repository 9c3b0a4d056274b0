"""Rollup rows on every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from wisp.models import Rollup
from wisp.store.base import Store

MINUTE = 60_000


def row(name: str, bucket: int, count: int = 1, namespace: str = "guest") -> Rollup:
    return Rollup(
        namespace=namespace,
        name=name,
        bucket=bucket,
        count=count,
        errors=1,
        cold=1,
        duration_sum=10 * count,
        histogram=[count, 0, 2],
        cpu_sum=1500,
        memory_max=32 * 1024 * 1024,
    )


def test_rows_round_trip_in_bucket_order(store: Store) -> None:
    rows = [row("pkg/a", 2 * MINUTE), row("pkg/a", MINUTE, 3), row("pkg/b", MINUTE)]
    store.insert_rollups(rows)
    found = store.list_rollups("guest", None, 0, 10 * MINUTE)
    assert [r.bucket for r in found] == [MINUTE, MINUTE, 2 * MINUTE]
    assert sorted(found, key=lambda r: (r.bucket, r.name, r.count)) == sorted(
        rows, key=lambda r: (r.bucket, r.name, r.count)
    )


def test_partial_rows_of_one_bucket_are_all_kept(store: Store) -> None:
    store.insert_rollups([row("a", MINUTE, 2)])
    store.insert_rollups([row("a", MINUTE, 5)])  # a second flush (or replica)
    found = store.list_rollups("guest", "a", MINUTE, MINUTE)
    assert sum(r.count for r in found) == 7


def test_filters_by_namespace_name_and_window(store: Store) -> None:
    store.insert_rollups(
        [
            row("a", MINUTE),
            row("b", MINUTE),
            row("a", 5 * MINUTE),
            row("a", MINUTE, namespace="other"),
        ]
    )
    assert [r.name for r in store.list_rollups("guest", "a", 0, 2 * MINUTE)] == ["a"]
    assert len(store.list_rollups("guest", None, MINUTE, 5 * MINUTE)) == 3
    assert store.list_rollups("guest", None, 2 * MINUTE, 4 * MINUTE) == []
    assert [r.namespace for r in store.list_rollups("other", None, 0, 9 * MINUTE)] == ["other"]
    store.insert_rollups([])  # nothing to do


def test_purge_drops_old_buckets(store: Store) -> None:
    store.insert_rollups([row("a", MINUTE), row("a", 3 * MINUTE), row("b", 2 * MINUTE)])
    assert store.purge_rollups(3 * MINUTE) == 2
    assert [r.bucket for r in store.list_rollups("guest", None, 0, 9 * MINUTE)] == [3 * MINUTE]
