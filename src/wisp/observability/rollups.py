"""Time-bucketed activation rollups: what the console's charts are drawn from.

Finished activations are summed in memory per (namespace, function, minute) on the
invocation path (a dict lookup and a few integer additions), and the sums are
written every ``FLUSH_EVERY`` seconds as partial rows (insert-only, so replicas
never contend); readers add the stored rows and the not-yet-flushed sums up. The
charts therefore survive restarts and need no Prometheus.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from dataclasses import dataclass, field

from wisp.models import SUCCESS, Activation, Rollup
from wisp.observability.metrics import BUCKETS_MS
from wisp.store.base import Store

log = logging.getLogger("wisp.observability")

BUCKET_MS = 60_000
BOUNDS = BUCKETS_MS  # ms; histogram[i] counts durations <= BOUNDS[i], the last one the rest
FLUSH_EVERY = 10.0  # seconds
RETENTION_DAYS = 30
PURGE_EVERY = 3600.0  # seconds
DAY_MS = 86_400_000

# window name -> (length ms, step ms): ~60-100 points each
WINDOWS = {
    "1h": (3_600_000, 60_000),
    "6h": (6 * 3_600_000, 5 * 60_000),
    "24h": (DAY_MS, 15 * 60_000),
    "7d": (7 * DAY_MS, 2 * 3_600_000),
}


@dataclass
class Point:
    """One step of a chart's series."""

    start: int  # epoch ms
    count: int = 0
    errors: int = 0
    cold: int = 0
    duration_sum: int = 0
    memory_max: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS) + 1))

    def add(self, row: Rollup) -> None:
        self.count += row.count
        self.errors += row.errors
        self.cold += row.cold
        self.duration_sum += row.duration_sum
        self.memory_max = max(self.memory_max, row.memory_max)
        for i, n in enumerate(row.histogram[: len(self.histogram)]):
            self.histogram[i] += n

    def percentile(self, q: float) -> float | None:
        """Estimated from the histogram, linear within the bucket it falls in."""
        if self.count == 0:
            return None
        wanted = q * self.count
        seen = 0
        for i, n in enumerate(self.histogram):
            if n and seen + n >= wanted:
                low = BOUNDS[i - 1] if i > 0 else 0.0
                high = BOUNDS[i] if i < len(BOUNDS) else BOUNDS[-1] * 2
                return round(low + (high - low) * (wanted - seen) / n, 1)
            seen += n
        return BOUNDS[-1] * 2

    def to_json(self) -> dict[str, object]:
        return {
            "start": self.start,
            "count": self.count,
            "errors": self.errors,
            "cold": self.cold,
            "avg": round(self.duration_sum / self.count, 1) if self.count else None,
            "p50": self.percentile(0.5),
            "p95": self.percentile(0.95),
            "memory": self.memory_max,
        }


class Rollups:
    def __init__(
        self, store: Store, flush_every: float = FLUSH_EVERY, retention_days: int = RETENTION_DAYS
    ) -> None:
        self.store = store
        self.flush_every = flush_every
        self.retention_days = retention_days
        self._pending: dict[tuple[str, str, int], Rollup] = {}
        self._task: asyncio.Task[None] | None = None

    def observe(self, record: Activation) -> None:
        """Add one finished activation (event loop thread: no lock needed)."""
        bucket = record.start - record.start % BUCKET_MS
        key = (record.namespace, record.name, bucket)
        row = self._pending.get(key)
        if row is None:
            row = self._pending[key] = Rollup(
                record.namespace, record.name, bucket, histogram=[0] * (len(BOUNDS) + 1)
            )
        duration = record.end - record.start
        row.count += 1
        if record.status_code != SUCCESS:
            row.errors += 1
        row.duration_sum += duration
        row.histogram[bisect_left(BOUNDS, duration)] += 1
        for annotation in record.annotations:
            key_ = annotation["key"]
            if key_ == "initTime":
                row.cold += 1
            elif key_ == "cpuTime":
                row.cpu_sum += int(annotation["value"] * 1000)
            elif key_ == "peakMemory" and annotation["value"] > row.memory_max:
                row.memory_max = annotation["value"]

    # -- writing -------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def flush(self) -> None:
        # Taken on the event loop, where observe() runs: no sum is changed mid-write.
        rows, self._pending = list(self._pending.values()), {}
        if not rows:
            return
        try:
            await asyncio.to_thread(self.store.insert_rollups, rows)
        except Exception:
            log.exception("could not write %d rollup rows; kept for the next flush", len(rows))
            for row in rows:
                self._merge_back(row)

    def _merge_back(self, row: Rollup) -> None:
        key = (row.namespace, row.name, row.bucket)
        newer = self._pending.get(key)
        if newer is None:
            self._pending[key] = row
            return
        newer.count += row.count
        newer.errors += row.errors
        newer.cold += row.cold
        newer.duration_sum += row.duration_sum
        newer.cpu_sum += row.cpu_sum
        newer.memory_max = max(newer.memory_max, row.memory_max)
        newer.histogram = [a + b for a, b in zip(newer.histogram, row.histogram, strict=False)]

    async def _run(self) -> None:
        last_purge = 0.0
        while True:
            await asyncio.sleep(self.flush_every)
            await self.flush()
            if time.monotonic() - last_purge > PURGE_EVERY:
                last_purge = time.monotonic()
                older = int(time.time() * 1000) - self.retention_days * DAY_MS
                try:
                    await asyncio.to_thread(self.store.purge_rollups, older)
                except Exception:
                    log.exception("could not purge old rollups")

    # -- reading -------------------------------------------------------------
    def series(
        self, namespace: str, name: str | None, window: str, now: int | None = None
    ) -> list[Point]:
        """Points of ``window`` (a WINDOWS key) ending now; blocking (store read)."""
        length, step = WINDOWS[window]
        now = now if now is not None else int(time.time() * 1000)
        end = now - now % step + step
        since = end - length
        points = [Point(since + i * step) for i in range(length // step)]
        rows = self.store.list_rollups(namespace, name, since, end - 1)
        for r in list(self._pending.values()):  # a C-level copy: safe beside the loop
            wanted = r.namespace == namespace and (name is None or r.name == name)
            if wanted and since <= r.bucket < end:
                rows.append(r)
        for row in rows:
            points[(row.bucket - since) // step].add(row)
        return points
