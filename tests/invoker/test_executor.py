"""The executor gives every lease back, whatever happens to the attempt (issue 12 item 4):
an exception from run() or init(), an unexpected error unpacking a bundle, a cancelled
task. Over the in-memory sandbox: no processes, so each path can be forced."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.invoker.conftest import make_target, make_zip
from tests.sandbox.fake import FakeInstance, FakeSandbox
from wisp.config import Settings
from wisp.invoker.journal import AcceptJournal
from wisp.invoker.local import LocalInvoker
from wisp.invoker.records import INTERRUPTED
from wisp.models import INTERNAL_ERROR, SUCCESS
from wisp.pool import Pool
from wisp.sandbox.base import Code, Instance, Outcome
from wisp.sandbox.bundles import BundleCache
from wisp.store.memory import MemoryStore
from wisp.store.writer import ActivationWriter

BUDGET_MB = 1024  # four instances of 256 MB


class Faulty(FakeInstance):
    """Raises where the test says: as a malformed frame or a cgroup write would."""

    fail_run: BaseException | None = None
    fail_init: BaseException | None = None

    async def init(self, code: Code, timeout: float, log_limit: int) -> Outcome:
        if self.fail_init is not None:
            raise self.fail_init
        return await super().init(code, timeout, log_limit)

    async def run(
        self, args: dict[str, Any], meta: dict[str, Any], timeout: float, log_limit: int
    ) -> Outcome:
        if self.fail_run is not None and args.get("fail"):
            raise self.fail_run
        return await super().run(args, meta, timeout, log_limit)


class FaultySandbox(FakeSandbox):
    async def spawn(self, kind: str, network: str = "egress") -> Instance:
        instance = Faulty(kind, len(self.spawned) + 1)
        self.spawned.append(instance)
        return instance


@pytest.fixture
async def setup(tmp_path):
    writer = ActivationWriter(MemoryStore(), batch=64, interval=0.001)
    writer.start()
    sandbox = FaultySandbox()
    pool = Pool(sandbox, BUDGET_MB, keepalive=60)
    settings = Settings(data_dir=tmp_path, drain_seconds=1)
    invoker = LocalInvoker(
        settings,
        sandbox,
        pool,
        writer,
        BundleCache(tmp_path / "bundles", 1 << 20),
        journal=AcceptJournal(tmp_path / "journal", writer),
    )
    await invoker.start()
    yield invoker, sandbox, pool
    await invoker.stop()
    writer.stop()


def assert_pool_empty(pool: Pool) -> None:
    assert (pool.busy, pool.used_mb, pool.idle) == (0, 0, 0)


async def test_run_raising_discards_the_instance_and_records_an_internal_error(setup):
    invoker, sandbox, pool = setup
    Faulty.fail_run = ValueError("malformed frame")
    try:
        target = make_target("x")
        # More failing calls than the pool holds instances: none may leak.
        for _ in range(5):
            record = await invoker.submit(target, {"fail": True}, subject="guest").done
            assert record.status_code == INTERNAL_ERROR
            assert "malformed frame" in record.result["error"]
            assert_pool_empty(pool)
        assert all(instance.killed for instance in sandbox.spawned)
        ok = await invoker.submit(target, {}, subject="guest").done
        assert ok.status_code == SUCCESS
    finally:
        Faulty.fail_run = None


async def test_init_raising_oserror_discards_the_instance(setup):
    invoker, sandbox, pool = setup
    Faulty.fail_init = OSError(28, "No space left on device: memory.max")
    try:
        record = await invoker.submit(make_target("x"), {}, subject="guest").done
    finally:
        Faulty.fail_init = None
    assert record.status_code == INTERNAL_ERROR
    assert "No space left" in record.result["error"]
    assert_pool_empty(pool)
    assert sandbox.spawned[0].killed


async def test_unexpected_bundle_error_discards_the_instance(setup, monkeypatch):
    invoker, sandbox, pool = setup

    def broken(digest: str, code: str) -> str:
        raise RuntimeError("zipfile exploded")

    monkeypatch.setattr(invoker.bundles, "unpack", broken)
    target = make_target(make_zip({"__main__.py": "def main(args):\n    return {}\n"}))
    record = await invoker.submit(target, {}, subject="guest").done
    assert record.status_code == INTERNAL_ERROR
    assert "zipfile exploded" in record.result["error"]
    assert_pool_empty(pool)
    assert sandbox.spawned[0].killed


async def test_a_cancelled_running_task_discards_its_instance_and_is_recorded(setup):
    invoker, sandbox, pool = setup
    invocation = invoker.submit(make_target("x"), {"sleep": 30}, subject="guest")
    while pool.busy == 0:
        await asyncio.sleep(0.01)
    [task] = list(invoker._tasks)
    task.cancel()
    record = await invocation.done
    assert record.status_code == INTERNAL_ERROR and record.result == {"error": INTERRUPTED}
    await asyncio.sleep(0)  # the discard's kill, shielded, finishes
    assert_pool_empty(pool)
    assert sandbox.spawned[0].killed
