"""Per-activation resource use in the record's annotations, from real sandboxes."""

from __future__ import annotations

import os

import pytest

from tests.invoker.conftest import make_target
from wisp.sandbox.usage import _vm_hwm

MB = 1024 * 1024
BUSY = (
    "import time\n"
    "def main(args):\n"
    "    end = time.process_time() + args['cpu']\n"
    "    while time.process_time() < end:\n"
    "        pass\n"
    "    return {}\n"
)
SLEEPY = "import time\ndef main(args):\n    time.sleep(0.2)\n    return {}\n"
HUNGRY = (
    "def main(args):\n"
    "    block = bytearray(args['mb'] * 1024 * 1024)\n"
    "    for i in range(0, len(block), 4096):\n"
    "        block[i] = 1\n"
    "    return {'n': len(block)}\n"
)


def annotation(record, key):
    return next((a["value"] for a in record.annotations if a["key"] == key), None)


async def test_cpu_time_counts_cpu_not_wall_time(invoke):
    busy = await invoke(make_target(BUSY, name="busy"), {"cpu": 0.15})
    sleepy = await invoke(make_target(SLEEPY, name="sleepy"))
    assert busy.status_code == 0 and sleepy.status_code == 0
    assert annotation(busy, "cpuTime") >= 100  # ms of CPU the function asked for, roughly
    assert annotation(sleepy, "cpuTime") < 50  # it slept 200 ms without using the CPU


async def test_peak_memory_is_per_activation(invoke):
    target = make_target(HUNGRY, name="hungry", memory=512)
    big = await invoke(target, {"mb": 96})
    assert big.status_code == 0, big.result
    assert annotation(big, "peakMemory") >= 96 * MB
    # The same warm instance, now touching little: its peak is measured afresh
    # (cgroup v1 and /proc both reset per run).
    small = await invoke(target, {"mb": 1})
    assert annotation(small, "peakMemory") < annotation(big, "peakMemory")


async def test_oom_is_annotated(invoke, platform):
    if not platform.invoker.sandbox.cgroups.available:
        pytest.skip("memory limits need cgroups (root)")
    record = await invoke(make_target(HUNGRY, name="oom", memory=128), {"mb": 400})
    assert record.status_code == 2
    assert annotation(record, "oom") is True


def test_vm_hwm_is_parsed_in_bytes() -> None:
    assert _vm_hwm(b"Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t 10 kB\n") == 2048 * 1024
    assert _vm_hwm(b"Name:\tx\n") is None
    with open(f"/proc/{os.getpid()}/status", "rb") as f:
        assert (_vm_hwm(f.read()) or 0) > MB
