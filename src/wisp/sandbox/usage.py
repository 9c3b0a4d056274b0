"""Per-activation resource use of one instance: CPU time and peak memory.

Read from the kernel's own accounting, with file descriptors opened once per
instance and read with ``pread`` (about a microsecond each, measured here), so
metering costs next to nothing per activation:

- CPU: ``/proc/<pid>/schedstat`` (nanoseconds on a CPU of the instance's main
  thread). On these hosts cgroup v1 mounts ``cpuacct`` apart from ``cpu``, so the
  slot has no CPU usage file of its own; user functions are single-threaded in the
  common case, and schedstat has nanosecond resolution where ``/proc/<pid>/stat``
  counts 10 ms ticks.
- Peak memory: the instance's cgroup high-water mark (``memory.max_usage_in_bytes``
  on v1, reset before each run; ``memory.peak`` on v2, which cannot be reset on most
  kernels and so is the instance's peak so far), or without a cgroup the process's
  ``VmHWM`` from ``/proc/<pid>/status``, reset through ``clear_refs``.

Anything unreadable (another OS, a process gone) yields ``None``: resource
annotations are left out rather than made up.

Between runs an instance's main thread is blocked reading its next message, so its
counters at the end of one run are those at the start of the next: ``begin`` reuses
them (one schedstat read per run instead of three, with ``runnable_ns``).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from wisp.sandbox.cgroups import Slot

_CLEAR_PEAK_RSS = b"5"  # clear_refs: reset the peak resident set size (VmHWM)


@dataclass
class Usage:
    cpu_ms: float | None
    peak_memory: int | None  # bytes


def _open(path: str, flags: int = os.O_RDONLY) -> int | None:
    try:
        return os.open(path, flags | os.O_CLOEXEC)
    except OSError:
        return None


class UsageMeter:
    """Measures one run at a time: ``begin()`` before it, ``end()`` after it."""

    def __init__(self, pid: int, slot: Slot | None) -> None:
        self._cpu_fd = _open(f"/proc/{pid}/schedstat")
        self._peak_fd: int | None = None
        self._reset_fd: int | None = None
        self._from_status = False
        if slot is not None:
            name = "memory.peak" if slot.v2 else "memory.max_usage_in_bytes"
            path = str(slot.dirs["unified" if slot.v2 else "memory"] / name)
            self._peak_fd = _open(path)
            if not slot.v2:
                self._reset_fd = _open(path, os.O_WRONLY)
        if self._peak_fd is None:
            self._peak_fd = _open(f"/proc/{pid}/status")
            self._reset_fd = _open(f"/proc/{pid}/clear_refs", os.O_WRONLY)
            self._from_status = self._peak_fd is not None
        self._cpu_start: int | None = None
        self._idle: tuple[int, int] | None = None  # schedstat when the last run ended
        self.runnable_start: int | None = None  # runnable_ns() when a run began, until it ends

    def begin(self) -> None:
        sched, self._idle = self._idle or self._sched(), None
        self._cpu_start, self.runnable_start = sched if sched else (None, None)
        if self._reset_fd is not None:
            try:
                os.pwrite(self._reset_fd, b"0" if not self._from_status else _CLEAR_PEAK_RSS, 0)
            except OSError:
                self._reset_fd = None

    def end(self) -> Usage:
        cpu_ms = None
        self._idle = sched = self._sched()
        self.runnable_start = None
        if sched is not None and self._cpu_start is not None:
            cpu_ms = round((sched[0] - self._cpu_start) / 1e6, 3)
        return Usage(cpu_ms, self._peak())

    def lifetime_cpu_ns(self) -> int:
        """Nanoseconds on a CPU of the main thread since it started, as of the last end()."""
        return self._idle[0] if self._idle is not None else 0

    def runnable_ns(self) -> int | None:
        """Nanoseconds the instance's main thread has spent on a CPU or waiting for one:
        what a CPU-bound process accumulates however busy the host is, and one that
        sleeps or waits on I/O does not."""
        sched = self._sched()
        return sched[1] if sched is not None else None

    def _sched(self) -> tuple[int, int] | None:
        """(ns on a CPU, ns on a CPU or waiting for one) of the main thread."""
        if self._cpu_fd is None:
            return None
        try:
            running, waiting = os.pread(self._cpu_fd, 64, 0).split(None, 2)[:2]
            return int(running), int(running) + int(waiting)
        except (OSError, ValueError):
            return None

    def _peak(self) -> int | None:
        if self._peak_fd is None:
            return None
        try:
            if not self._from_status:
                return int(os.pread(self._peak_fd, 32, 0))
            return _vm_hwm(os.pread(self._peak_fd, 4096, 0))
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        for fd in (self._cpu_fd, self._peak_fd, self._reset_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._cpu_fd = self._peak_fd = self._reset_fd = None


def _vm_hwm(status: bytes) -> int | None:
    start = status.find(b"VmHWM:")
    if start < 0:
        return None
    end = status.find(b"\n", start)
    fields = status[start + 6 : end].split()
    return int(fields[0]) * 1024 if fields else None  # reported in kB
