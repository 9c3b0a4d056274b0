"""A dead instance's uid and cgroup slot go back only once nothing of it is left.

A process that survives SIGKILL is made with the cgroup v1 freezer (a frozen task
does not die until thawed, as one in uninterruptible sleep would not): moved into the
instance's cgroup slot and frozen, it keeps the slot and the instance's uid out of the
free lists past the old 2 s grace, and they come back once it is thawed and gone.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wisp.config import Settings
from wisp.runtimes import RuntimeTable, discover
from wisp.sandbox.instance import LocalInstance
from wisp.sandbox.local import LocalSandbox

FREEZER = Path("/sys/fs/cgroup/freezer")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not FREEZER.is_dir(),
    reason="cgroup slots need root; a process surviving SIGKILL needs the v1 freezer",
)


@pytest.fixture
async def sandbox(tmp_path: Path, server_umask: None) -> AsyncIterator[LocalSandbox]:
    settings = Settings(data_dir=tmp_path, stem_cells=0, pool_memory_mb=512, network="none")
    sandbox = LocalSandbox(settings, RuntimeTable(discover(None)))
    await sandbox.start()
    assert sandbox.cgroups.available, "this test needs cgroups (root, v1 here)"
    yield sandbox
    await sandbox.stop()


async def test_a_slot_is_not_reused_while_a_process_is_in_it(sandbox: LocalSandbox) -> None:
    instance = await sandbox.spawn(sandbox.runtimes.spawner.kind, "none")
    assert isinstance(instance, LocalInstance)
    slot, uid = instance.slot, instance.uid
    assert slot is not None and uid is not None
    freezer = FREEZER / f"wisp-test-{os.getpid()}"
    freezer.mkdir()
    lingering = subprocess.Popen(["sleep", "600"])
    try:
        for directory in slot.dirs.values():
            (directory / "cgroup.procs").write_text(str(lingering.pid))
        (freezer / "cgroup.procs").write_text(str(lingering.pid))
        (freezer / "freezer.state").write_text("FROZEN")
        assert lingering.pid in slot.pids()

        await instance.kill()
        await asyncio.wait_for(asyncio.shield(instance.exited), 10)
        await asyncio.sleep(3.0)  # past the old fixed 2 s
        assert lingering.pid in slot.pids()  # SIGKILLed, frozen: still there
        assert slot not in sandbox.cgroups._free
        assert uid not in sandbox._free_uids

        (freezer / "freezer.state").write_text("THAWED")  # the pending SIGKILL lands
        lingering.wait(timeout=10)
        deadline = time.monotonic() + 10
        while slot not in sandbox.cgroups._free and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert slot in sandbox.cgroups._free and uid in sandbox._free_uids
        assert slot.pids() == []
    finally:
        (freezer / "freezer.state").write_text("THAWED")
        lingering.kill()
        lingering.wait()
        freezer.rmdir()


async def test_a_dead_instance_comes_back_at_once_when_nothing_lingers(
    sandbox: LocalSandbox,
) -> None:
    instance = await sandbox.spawn(sandbox.runtimes.spawner.kind, "none")
    assert isinstance(instance, LocalInstance)
    slot = instance.slot
    await instance.kill()
    deadline = time.monotonic() + 5
    while slot not in sandbox.cgroups._free and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert slot in sandbox.cgroups._free
    assert instance.pid not in sandbox.live
