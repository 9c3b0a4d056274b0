"""Per-run CPU metering reads the kernel's schedstat once per run."""

from __future__ import annotations

import os
import time

from wisp.sandbox.usage import UsageMeter


def burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_cpu_time_of_a_run(monkeypatch):
    meter = UsageMeter(os.getpid(), None)  # this process: the test is the "instance"
    try:
        meter.begin()
        assert meter.runnable_start is not None  # what the CPU demotion starts from
        burn(0.05)
        usage = meter.end()
        assert usage.cpu_ms is not None and 40 <= usage.cpu_ms < 1000
        assert meter.runnable_start is None  # an init exchange reads its own
    finally:
        meter.close()


def test_a_run_starts_from_where_the_last_one_ended(monkeypatch):
    meter = UsageMeter(os.getpid(), None)
    reads = []
    real = meter._sched

    def counted() -> tuple[int, int] | None:
        reads.append(1)
        return real()

    monkeypatch.setattr(meter, "_sched", counted)
    try:
        meter.begin()
        meter.end()
        assert len(reads) == 2  # the first run has nothing to start from
        for _ in range(3):
            meter.begin()
            usage = meter.end()
            assert usage.cpu_ms is not None and usage.cpu_ms >= 0
        assert len(reads) == 2 + 3  # then one read per run
    finally:
        meter.close()
