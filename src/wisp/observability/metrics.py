"""Prometheus metrics: per function from finished activations, per platform at scrape.

The invocation path pays only for plain integer increments and three ``bisect``
calls per finished activation (``Metrics.observe``); nothing is locked, formatted
or allocated per label set after a function's first activation. prometheus_client
does the exposition, from a collector that turns these counters into metric
families when ``/metrics`` is scraped; platform gauges (pool, stem cells, writer)
are read at that moment from the live objects.

Labels are bounded: ``namespace`` and ``function`` (the action path, never an
activation id or version), ``outcome`` from a fixed set. Past ``MAX_SERIES``
distinct functions, further ones are folded into ``function="_other"`` so a
tenant creating functions in a loop cannot blow up the scrape.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from wisp.models import Activation

if TYPE_CHECKING:
    from wisp.platform import Platform

# Seconds; one set for duration, init and wait, so they read alike on dashboards.
BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BUCKETS_MS = tuple(b * 1000 for b in BUCKETS)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# By status code; "dead": an asynchronous activation out of retries or age.
OUTCOMES = ("success", "application_error", "developer_error", "internal_error", "dead")
MAX_SERIES = 5000
OTHER = "_other"
MB = 1024 * 1024


class Histogram:
    """Bucket counts (not cumulative) plus a sum, in the unit observed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self, scale: float = 1.0) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            out.append(("+Inf" if bound == math.inf else _num(bound * scale), running))
        return out


class FunctionStats:
    __slots__ = ("cold", "cpu_ms", "duration", "init", "oom", "outcomes", "timeouts", "wait")

    def __init__(self) -> None:
        self.outcomes = [0] * len(OUTCOMES)
        self.duration = Histogram(BUCKETS_MS)
        self.init = Histogram(BUCKETS_MS)
        self.wait = Histogram(BUCKETS_MS)
        self.cold = 0
        self.timeouts = 0
        self.oom = 0
        self.cpu_ms = 0.0


class Metrics:
    def __init__(self) -> None:
        self.functions: dict[tuple[str, str], FunctionStats] = {}
        self.store_seconds = Histogram(BUCKETS)
        self.batch_sizes = Histogram(BATCH_BUCKETS)

    def stats(self, namespace: str, function: str) -> FunctionStats:
        key = (namespace, function)
        stats = self.functions.get(key)
        if stats is None:
            if len(self.functions) >= MAX_SERIES:
                key = (namespace, OTHER)
                stats = self.functions.get(key)
            if stats is None:
                stats = self.functions[key] = FunctionStats()
        return stats

    def observe(self, record: Activation) -> None:
        """Count one finished activation (called on the invocation path)."""
        stats = self.stats(record.namespace, record.name)
        status = record.status_code
        stats.outcomes[status if 0 <= status < len(OUTCOMES) else 3] += 1
        stats.duration.observe(record.end - record.start)
        for annotation in record.annotations:
            key = annotation["key"]
            if key == "waitTime":
                stats.wait.observe(annotation["value"])
            elif key == "initTime":
                stats.cold += 1
                stats.init.observe(annotation["value"])
            elif key == "cpuTime":
                stats.cpu_ms += annotation["value"]
            elif key == "timeout":
                if annotation["value"] is True:
                    stats.timeouts += 1
            elif key == "oom":
                stats.oom += 1

    def observe_batch(self, records: int, seconds: float) -> None:
        """One group commit of the activation writer (called from its thread)."""
        self.batch_sizes.observe(records)
        self.store_seconds.observe(seconds)


class _Collector(Collector):
    def __init__(
        self, metrics: Metrics, platform: Platform, subscribers: Callable[[], int] | None
    ) -> None:
        self.metrics = metrics
        self.platform = platform
        self.subscribers = subscribers

    def collect(self) -> Iterator[Metric]:
        yield from self._functions()
        yield from self._instances()
        yield from self._platform()

    def _functions(self) -> Iterator[Metric]:
        labels = ["namespace", "function"]
        invocations = CounterMetricFamily(
            "wisp_activations", "Finished activations by outcome.", labels=[*labels, "outcome"]
        )
        histograms = {
            "duration": HistogramMetricFamily(
                "wisp_activation_duration_seconds", "Activation duration.", labels=labels
            ),
            "init": HistogramMetricFamily(
                "wisp_init_seconds", "Code initialisation time of cold starts.", labels=labels
            ),
            "wait": HistogramMetricFamily(
                "wisp_wait_seconds", "Time waiting for an instance (queue).", labels=labels
            ),
        }
        counters = {
            "cold": CounterMetricFamily("wisp_cold_starts", "Cold starts.", labels=labels),
            "timeouts": CounterMetricFamily(
                "wisp_timeouts", "Activations stopped at their time limit.", labels=labels
            ),
            "oom": CounterMetricFamily(
                "wisp_oom_kills", "Activations killed at their memory limit.", labels=labels
            ),
        }
        cpu = CounterMetricFamily(
            "wisp_activation_cpu_seconds", "CPU time used by activations.", labels=labels
        )
        for (namespace, function), stats in list(self.metrics.functions.items()):
            values = [namespace, function]
            for outcome, count in zip(OUTCOMES, stats.outcomes, strict=True):
                invocations.add_metric([*values, outcome], count)
            for name, family in histograms.items():
                hist: Histogram = getattr(stats, name)
                family.add_metric(values, hist.cumulative(0.001), hist.total / 1000)
            for name, counter in counters.items():
                counter.add_metric(values, getattr(stats, name))
            cpu.add_metric(values, stats.cpu_ms / 1000)
        yield invocations
        yield from histograms.values()
        yield from counters.values()
        yield cpu

    def _instances(self) -> Iterator[Metric]:
        counts = self.platform.invoker.instance_counts()
        labels = ["namespace", "function"]
        warm = GaugeMetricFamily("wisp_instances_idle", "Warm idle instances.", labels=labels)
        busy = GaugeMetricFamily("wisp_instances_busy", "Busy instances.", labels=labels)
        merged: dict[tuple[str, str], list[int]] = {}
        for key, (live, idle) in counts.items():
            if isinstance(key, tuple) and len(key) >= 3:
                namespace, package, name = str(key[0]), str(key[1]), str(key[2])
                function = name if package == "default" else f"{package}/{name}"
                entry = merged.setdefault((namespace, function), [0, 0])
                entry[0] += live - idle
                entry[1] += idle
        for (namespace, function), (busy_count, idle_count) in merged.items():
            busy.add_metric([namespace, function], busy_count)
            warm.add_metric([namespace, function], idle_count)
        yield warm
        yield busy

    def _platform(self) -> Iterator[Metric]:
        platform = self.platform
        invoker = platform.invoker
        pool = invoker.pool_stats()
        if pool is not None:
            yield _gauge("wisp_pool_memory_used_bytes", "Memory reserved.", pool.used_mb * MB)
            yield _gauge("wisp_pool_memory_budget_bytes", "Memory budget.", pool.budget_mb * MB)
            yield _gauge("wisp_pool_busy", "Instances running an activation.", pool.busy)
            yield _gauge("wisp_pool_idle", "Warm idle instances.", pool.idle)
            yield _gauge("wisp_pool_queued", "Invocations waiting for room.", pool.queued)
            yield _counter("wisp_pool_evictions", "Idle instances evicted.", pool.evictions)
        cells = invoker.stem_cells()
        if cells:
            ready = GaugeMetricFamily(
                "wisp_stem_cells_ready",
                "Confined, code-less instances ready.",
                labels=["kind", "network"],
            )
            for (kind, network), count in cells.items():  # kept per kind and network mode
                ready.add_metric([kind, network], count)
            yield ready
        throttled = CounterMetricFamily(
            "wisp_throttled", "Invocations refused (429).", labels=["namespace"]
        )
        for namespace, count in invoker.throttled().items():
            throttled.add_metric([namespace], count)
        yield throttled
        writer = platform.writer
        yield _gauge("wisp_writer_pending", "Activation records not yet written.", writer.pending)
        yield _counter("wisp_writer_records", "Activation records written.", writer.written)
        yield _counter("wisp_writer_failures", "Failed group commits.", writer.failures)
        yield _gauge(
            "wisp_writer_backlog", "Unwritten records at which invokes get 503.", writer.backlog
        )
        yield _counter(
            "wisp_writer_refused", "Invocations refused (503): backlog full.", writer.refused
        )
        sizes = HistogramMetricFamily(
            "wisp_writer_batch_size", "Records per group commit.", labels=[]
        )
        sizes.add_metric([], self.metrics.batch_sizes.cumulative(), self.metrics.batch_sizes.total)
        yield sizes
        latency = HistogramMetricFamily(
            "wisp_store_write_seconds", "Duration of group commits.", labels=[]
        )
        store = self.metrics.store_seconds
        latency.add_metric([], store.cumulative(), store.total)
        yield latency
        if self.subscribers is not None:
            yield _gauge("wisp_stream_subscribers", "Live stream clients.", self.subscribers())
        yield _gauge("wisp_scrape_timestamp_seconds", "When this scrape ran.", time.time())


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _num(value: float) -> str:
    return repr(float(value))


def registry(
    metrics: Metrics, platform: Platform, subscribers: Callable[[], int] | None = None
) -> CollectorRegistry:
    """A registry of its own per app, so tests and several apps never share one."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Collector(metrics, platform, subscribers))
    ProcessCollector(registry=reg)
    return reg


def render(reg: CollectorRegistry) -> bytes:
    return generate_latest(reg)
