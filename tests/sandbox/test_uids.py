"""Sandbox uid blocks: two servers on one host never share an instance uid."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.runtimes import RuntimeTable, discover
from wisp.sandbox import uids
from wisp.sandbox.local import LocalSandbox


def test_each_claim_gets_the_lowest_free_block(tmp_path):
    first = uids.claim(300_000, 100, tmp_path)
    second = uids.claim(300_000, 100, tmp_path)
    assert (first.first, first.last) == (300_000, 300_099)
    assert (second.first, second.last) == (300_100, 300_199)
    first.release()
    again = uids.claim(300_000, 100, tmp_path)  # a released block is free again
    assert again.first == 300_000
    second.release()
    again.release()


def test_a_block_is_freed_when_its_holder_dies(tmp_path):
    code = (
        "import sys, time; from pathlib import Path; from wisp.sandbox import uids\n"
        f"block = uids.claim(300_000, 100, Path({str(tmp_path)!r}))\n"
        "print(block.first, flush=True); time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "300000"
        other = uids.claim(300_000, 100, tmp_path)
        assert other.first == 300_100  # the first block is held by the other process
        other.release()
        holder.kill()
    freed = uids.claim(300_000, 100, tmp_path)
    assert freed.first == 300_000  # SIGKILL freed it
    freed.release()


def test_all_blocks_taken_is_a_clear_error(tmp_path):
    held = [uids.claim(300_000, 10, tmp_path) for _ in range(uids.BLOCKS)]
    with pytest.raises(PlatformError, match=f"all {uids.BLOCKS} blocks of 10 sandbox uids"):
        uids.claim(300_000, 10, tmp_path)
    for block in held:
        block.release()


@pytest.mark.skipif(os.geteuid() != 0, reason="uids per instance need root (CI is root)")
async def test_two_sandboxes_on_one_host_hand_out_disjoint_uids(tmp_path):
    runtimes = RuntimeTable(discover())
    made = []
    try:
        for name in ("a", "b"):
            settings = Settings(data_dir=tmp_path / name, stem_cells=1, pool_memory_mb=512)
            sandbox = LocalSandbox(settings, runtimes)
            await sandbox.start()
            made.append(sandbox)
        a, b = (s.uids for s in made)
        assert a is not None and b is not None
        assert a.last < b.first or b.last < a.first
        assert not set(made[0]._free_uids) & set(made[1]._free_uids)
    finally:
        for sandbox in made:
            await sandbox.stop()
