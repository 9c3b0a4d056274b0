"""The wait for an instance is bounded by the activation's maximum event age (issue 20
item 3): past it, the attempt ends without running. Over the in-memory sandbox, with
an event age shorter than the API allows, so that the bound is reached in a second."""

from __future__ import annotations

import asyncio

import pytest

from tests.invoker.conftest import make_target
from tests.sandbox.fake import FakeSandbox
from wisp.config import Settings
from wisp.invoker.base import Target
from wisp.invoker.local import LocalInvoker
from wisp.invoker.retries import EVENT_AGE_EXCEEDED, InvokeConfig
from wisp.models import DEAD, INTERNAL_ERROR, SUCCESS, Activation
from wisp.pool import Pool
from wisp.sandbox.bundles import BundleCache
from wisp.store.memory import MemoryStore
from wisp.store.writer import ActivationWriter


@pytest.fixture
async def setup(tmp_path):
    writer = ActivationWriter(MemoryStore(), batch=64, interval=0.001)
    writer.start()
    sandbox = FakeSandbox()
    pool = Pool(sandbox, 1024, keepalive=60)
    invoker = LocalInvoker(
        Settings(data_dir=tmp_path, drain_seconds=1),
        sandbox,
        pool,
        writer,
        BundleCache(tmp_path / "bundles", 1 << 20),
    )
    await invoker.start()
    yield invoker, pool
    await invoker.stop()
    writer.stop()


def capped(config: InvokeConfig) -> Target:
    target = make_target("x")
    target.action.annotations.append({"key": "max-instances", "value": 1})
    target.invoke_config = config
    return target


def note(record: Activation, key: str) -> object:
    return next((a["value"] for a in record.annotations if a["key"] == key), None)


async def test_an_async_activation_with_a_policy_waiting_past_its_event_age_is_dead(setup):
    invoker, pool = setup
    target = capped(InvokeConfig(maximum_retry_attempts=1, maximum_event_age_seconds=1))
    busy = invoker.submit(target, {"sleep": 2}, subject="guest")
    await asyncio.sleep(0.05)
    queued = invoker.submit(target, {}, subject="guest")
    record = await queued.done
    assert record.status_code == DEAD
    assert note(record, "reason") == EVENT_AGE_EXCEEDED
    assert "waited" in record.result["error"]
    assert 900 <= note(record, "waitTime") < 2000  # type: ignore[operator]
    assert (await busy.done).status_code == SUCCESS
    assert pool.busy == 0


async def test_without_a_policy_the_wait_past_the_event_age_is_an_internal_error(setup):
    invoker, _ = setup
    target = capped(InvokeConfig(maximum_event_age_seconds=1))
    busy = invoker.submit(target, {"sleep": 2}, subject="guest")
    await asyncio.sleep(0.05)
    record = await invoker.submit(target, {}, subject="guest", blocking=True).done
    assert record.status_code == INTERNAL_ERROR
    assert "maximum event age is 1 seconds" in record.result["error"]
    assert (await busy.done).status_code == SUCCESS
    # The waiter left the queue: the next call gets the instance at once.
    again = await invoker.submit(target, {}, subject="guest").done
    assert again.status_code == SUCCESS
    assert note(again, "waitTime") < 500  # type: ignore[operator]
