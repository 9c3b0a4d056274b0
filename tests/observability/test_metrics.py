"""/metrics after known invocations, over real sandboxes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.invoker.conftest import make_target
from wisp.api import create_app
from wisp.errors import TooManyRequests
from wisp.models import DEAD, Activation
from wisp.observability.metrics import MAX_SERIES, OTHER, Metrics

CODE = (
    "import time\n"
    "def main(args):\n"
    "    if args.get('fail'):\n"
    "        return {'error': 'no'}\n"
    "    time.sleep(args.get('sleep', 0))\n"
    "    return {'ok': True}\n"
)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name: str, **labels: str) -> float:
    return found[(name, tuple(sorted(labels.items())))]


@pytest.fixture
async def client(platform) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wisp.test") as c:
        yield c


async def test_metrics_after_known_invocations(platform, invoke, client) -> None:
    target = make_target(CODE, name="fn", package="pkg", timeout=1000)
    await invoke(target)  # cold
    await invoke(target)  # warm
    await invoke(target, {"fail": True})
    timed_out = await invoke(target, {"sleep": 5})
    assert timed_out.status_code == 2
    await invoke(target)  # cold again: the timeout killed the instance

    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    fn = {"namespace": "guest", "function": "pkg/fn"}
    assert value(found, "wisp_activations_total", outcome="success", **fn) == 3
    assert value(found, "wisp_activations_total", outcome="application_error", **fn) == 1
    assert value(found, "wisp_activations_total", outcome="developer_error", **fn) == 1
    assert value(found, "wisp_activation_duration_seconds_count", **fn) == 5
    # The timeout ran a second; so the sum is at least that, and the +Inf bucket has all.
    assert value(found, "wisp_activation_duration_seconds_sum", **fn) >= 0.9
    assert value(found, "wisp_activation_duration_seconds_bucket", le="+Inf", **fn) == 5
    assert value(found, "wisp_activation_duration_seconds_bucket", le="0.001", **fn) <= 4
    assert value(found, "wisp_cold_starts_total", **fn) == 2
    assert value(found, "wisp_init_seconds_count", **fn) == 2
    assert value(found, "wisp_wait_seconds_count", **fn) == 5
    assert value(found, "wisp_timeouts_total", **fn) == 1
    assert value(found, "wisp_oom_kills_total", **fn) == 0
    assert value(found, "wisp_activation_cpu_seconds_total", **fn) > 0
    assert value(found, "wisp_instances_idle", **fn) == 1  # the one after the timeout
    # Platform gauges come from the live objects.
    assert value(found, "wisp_pool_memory_budget_bytes") == 2048 * 1024 * 1024
    assert value(found, "wisp_stem_cells_ready", kind="python:3.11", network="egress") >= 0
    assert "wisp_writer_pending" in {name for name, _ in found}
    assert not [name for name, _ in found if name == "wisp_throttled_total"]
    for name, labels in found:
        assert "activation_id" not in dict(labels), name


async def test_warm_instances_are_counted_per_function(platform, invoke, client) -> None:
    await invoke(make_target(CODE, name="warm"))
    found = samples((await client.get("/metrics")).text)
    fn = {"namespace": "guest", "function": "warm"}
    assert value(found, "wisp_instances_idle", **fn) == 1
    assert value(found, "wisp_instances_busy", **fn) == 0
    assert value(found, "wisp_pool_memory_used_bytes") >= 256 * 1024 * 1024


async def test_writer_batches_and_store_latency(platform, invoke, client) -> None:
    await invoke(make_target(CODE, name="w"))
    platform.writer.flush(5)
    found = samples((await client.get("/metrics")).text)
    assert value(found, "wisp_writer_batch_size_count") >= 1
    assert value(found, "wisp_writer_batch_size_sum") >= 1
    assert value(found, "wisp_store_write_seconds_count") >= 1
    assert value(found, "wisp_writer_records_total") >= 1


async def test_throttles_are_counted_per_namespace(platform, invoke, client) -> None:
    platform.invoker.quotas.default_per_minute = 1  # read at the namespace's first call
    target = make_target(CODE, name="t")
    await invoke(target)
    for _ in range(2):
        with pytest.raises(TooManyRequests):
            await invoke(target)
    found = samples((await client.get("/metrics")).text)
    assert value(found, "wisp_throttled_total", namespace="guest") == 2
    assert [labels for name, labels in found if name == "wisp_throttled_total"] == [
        (("namespace", "guest"),)
    ]


def _record(name: str) -> Activation:
    return Activation("a" * 32, "ns", name, "0.0.1", "ns", 0, 5, 0, {}, annotations=[])


def test_series_are_bounded() -> None:
    metrics = Metrics()
    for i in range(MAX_SERIES + 10):
        metrics.observe(_record(f"fn{i}"))
    assert len(metrics.functions) == MAX_SERIES + 1
    assert sum(metrics.functions[("ns", OTHER)].outcomes) == 10


def test_dead_activations_have_their_own_outcome() -> None:
    metrics = Metrics()
    record = _record("fn")
    record.status_code = DEAD
    metrics.observe(record)
    assert metrics.functions[("ns", "fn")].outcomes == [0, 0, 0, 0, 1]
