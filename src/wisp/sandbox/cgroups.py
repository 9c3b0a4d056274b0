"""A pool of pre-created cgroups, one per live instance.

Creating a cgroup while a request waits is slow and erratic under load (~11 ms
p50 measured here), so slots are made up front and reused. cgroup v1 (memory, cpu,
pids controllers) is what these hosts have and is tested; the v2 path follows the
unified hierarchy's file names but is untested here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("wisp.sandbox")

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "pids")
PIDS_MAX = 256
CPU_PERIOD_US = 100_000  # the CFS quota's period; an instance's quota is CPUs x this
# An instance that has run past its first moments (see LocalInstance) yields the CPU:
# its group becomes SCHED_IDLE (cpu.idle, kernel 5.15+) so that another tenant's short
# request preempts it at once; without cpu.idle its weight drops instead (v1
# cpu.shares, v2 cpu.weight, whose defaults are 1024 and 100).
CPU_DEFAULT = {1: 1024, 2: 100}
CPU_LOW = {1: 16, 2: 2}
# SCHED_IDLE alone still cost a neighbour's p99 about 3x on this VM (the scheduler
# counts a CPU running only idle tasks as free and puts wakers there; the hypervisor
# then runs that vCPU late). So while other tenants' short exchanges keep coming, hogs
# are also fenced off a reserved quarter of the CPUs (at least one) with a cpuset, and
# get them all back FENCE_HOLD seconds after the last one. Measured on 2 vCPUs with two
# spinners: neighbour p99 3.3-3.5 ms unfenced (idle, shares or plain), 0.5-0.6 ms fenced.
FENCE_HOLD = 1.0


@dataclass(eq=False)  # slots are hashed by identity (CpuFence.hogs)
class Slot:
    index: int
    dirs: dict[str, Path]  # controller -> directory; v2 has the one key "unified"
    v2: bool
    oom_baseline: int = field(default=0)
    cpu_low: bool = field(default=False)
    fence: CpuFence | None = field(default=None, repr=False)
    fenced: bool = field(default=False)  # its cpuset is the fence's hog CPUs

    @property
    def paths(self) -> list[str]:
        return [str(d) for d in self.dirs.values()]

    def _file(self, controller: str, name: str) -> Path:
        return self.dirs["unified" if self.v2 else controller] / name

    def set_memory(self, megabytes: int) -> None:
        limit = str(megabytes * 1024 * 1024)
        if self.v2:
            self._file("memory", "memory.max").write_text(limit)
            with contextlib.suppress(OSError):
                self._file("memory", "memory.swap.max").write_text("0")
        else:
            # Memory and memory+swap alike, so that swap adds nothing (memsw exists only
            # with swap accounting; it may never be below the memory limit, so the
            # order of the two writes depends on the direction).
            memory = self._file("memory", "memory.limit_in_bytes")
            memsw = self._file("memory", "memory.memsw.limit_in_bytes")
            try:
                memsw.write_text(limit)
                memory.write_text(limit)
            except OSError:
                memory.write_text(limit)
                with contextlib.suppress(OSError):
                    memsw.write_text(limit)
        self.oom_baseline = self.oom_kills()

    def set_cpu_low(self, low: bool) -> None:
        """Lower (or restore) this slot's CPU weight relative to the other instances'."""
        if low == self.cpu_low:
            return
        self.cpu_low = low
        if self.fence is not None:
            if low:
                self.fence.add(self)
            else:
                self.fence.remove(self)
        try:
            # SCHED_IDLE for the whole group (kernel 5.15+): any other task that wakes
            # preempts it at once; the group keeps its weight for when it leaves.
            self._file("cpu", "cpu.idle").write_text("1" if low else "0")
            return
        except OSError:
            pass
        version = 2 if self.v2 else 1
        value = (CPU_LOW if low else CPU_DEFAULT)[version]
        with contextlib.suppress(OSError):  # v2 without the cpu controller: no weights
            self._file("cpu", "cpu.weight" if self.v2 else "cpu.shares").write_text(str(value))

    def set_cpus(self, cpus: str, fenced: bool) -> None:
        with contextlib.suppress(OSError):  # a group whose last task is gone
            self._file("cpuset", "cpuset.cpus").write_text(cpus)
            self.fenced = fenced

    def oom_kills(self) -> int:
        name = "memory.events" if self.v2 else "memory.oom_control"
        try:
            text = self._file("memory", name).read_text()
        except OSError:
            return 0
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def oom_killed(self) -> bool:
        return self.oom_kills() > self.oom_baseline

    def peak_memory(self) -> int:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        try:
            return int(self._file("memory", name).read_text())
        except (OSError, ValueError):
            return 0

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self.dirs.values():
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill_all(self) -> None:
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class CpuFence:
    """Keeps demoted slots (CPU hogs) off the reserved CPUs while others need them."""

    def __init__(self, cpus: list[int]) -> None:
        cpus = sorted(cpus)
        reserved = max(1, (len(cpus) + 3) // 4)
        self.all = cpu_list(cpus)
        self.hog = cpu_list(cpus[reserved:])  # "" with a single CPU: nothing to fence
        self.hogs: set[Slot] = set()
        self.until = 0.0  # the fence is up until then
        self._timer: asyncio.TimerHandle | None = None

    def add(self, slot: Slot) -> None:
        self.hogs.add(slot)
        if self.hog and time.monotonic() < self.until:
            slot.set_cpus(self.hog, True)
            self._arm()

    def remove(self, slot: Slot) -> None:
        self.hogs.discard(slot)
        if slot.fenced:
            slot.set_cpus(self.all, False)

    def short_exchange(self) -> None:
        """Another tenant's exchange ended without being demoted: raise the fence."""
        self.until = time.monotonic() + FENCE_HOLD
        if self.hogs and self.hog:
            for slot in self.hogs:
                if not slot.fenced:
                    slot.set_cpus(self.hog, True)
            self._arm()

    def _arm(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.until - time.monotonic(), self._expire)

    def _expire(self) -> None:
        self._timer = None
        if time.monotonic() < self.until:
            self._arm()
            return
        for slot in self.hogs:
            if slot.fenced:
                slot.set_cpus(self.all, False)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def cpu_list(cpus: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the cpuset file format)."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


class CgroupPool:
    """Slots under ``<controller>/wisp/<server pid>/<index>``."""

    def __init__(self, enabled: bool = True, cpus: float = 1.0) -> None:
        """``cpus``: the CPU time each instance may use per wall second (0: no quota)."""
        self.version = detect() if enabled else 0
        self.cpus = cpus
        self._parents: dict[str, Path] = {}
        self._free: list[Slot] = []
        self._count = 0
        self.fence: CpuFence | None = None

    @property
    def available(self) -> bool:
        return self.version != 0

    def prepare(self, count: int) -> None:
        if not self.available:
            return
        tag = str(os.getpid())
        if self.version == 2:
            self._parents = {"unified": ROOT / "wisp" / tag}
            with contextlib.suppress(OSError):
                (ROOT / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        else:
            self._parents = {c: ROOT / c / "wisp" / tag for c in V1_CONTROLLERS}
            if (ROOT / "cpuset").is_dir():
                self._parents["cpuset"] = ROOT / "cpuset" / "wisp" / tag
        for parent in self._parents.values():
            parent.mkdir(parents=True, exist_ok=True)
            self._sweep_stale(parent.parent)
        if self.version == 2:
            with contextlib.suppress(OSError):
                unified = self._parents["unified"]
                (unified.parent / "cgroup.subtree_control").write_text("+memory +pids")
                (unified / "cgroup.subtree_control").write_text("+memory +pids")
            with contextlib.suppress(OSError):
                for d in (ROOT, unified.parent, unified):
                    (d / "cgroup.subtree_control").write_text("+cpuset")
                self.fence = CpuFence(sorted(os.sched_getaffinity(0)))
        elif "cpuset" in self._parents:
            try:
                cpuset = self._parents["cpuset"]
                for group in (cpuset.parent, cpuset):
                    self._inherit_cpuset(group)
                self.fence = CpuFence(sorted(os.sched_getaffinity(0)))
            except OSError as exc:
                log.warning("no CPU fence for hogs: %s", exc)
                del self._parents["cpuset"]
        self.grow(count)

    @staticmethod
    def _inherit_cpuset(group: Path) -> None:
        """A new v1 cpuset group has no CPUs and no memory nodes: copy its parent's."""
        for name in ("cpuset.cpus", "cpuset.mems"):
            (group / name).write_text((group.parent / name).read_text().strip())

    def grow(self, count: int) -> None:
        for _ in range(count):
            index = self._count
            dirs = {c: parent / str(index) for c, parent in self._parents.items()}
            for d in dirs.values():
                d.mkdir(exist_ok=True)
            slot = Slot(index, dirs, self.version == 2, fence=self.fence)
            if "cpuset" in dirs:
                self._inherit_cpuset(dirs["cpuset"])
            quota = round(self.cpus * CPU_PERIOD_US) if self.cpus > 0 else -1
            if self.version == 1:
                with contextlib.suppress(OSError):
                    slot._file("memory", "memory.swappiness").write_text("0")
                slot._file("pids", "pids.max").write_text(str(PIDS_MAX))
                slot._file("cpu", "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                slot._file("cpu", "cpu.cfs_quota_us").write_text(str(quota))
            else:
                with contextlib.suppress(OSError):
                    slot._file("pids", "pids.max").write_text(str(PIDS_MAX))
                with contextlib.suppress(OSError):  # without the cpu controller: no quota
                    value = str(quota) if quota > 0 else "max"
                    slot._file("cpu", "cpu.max").write_text(f"{value} {CPU_PERIOD_US}")
            self._free.append(slot)
            self._count += 1

    def acquire(self) -> Slot | None:
        if not self.available:
            return None
        if not self._free:
            # Should not happen with a pool sized to the memory budget; grow rather than fail.
            log.warning("cgroup pool exhausted; creating a slot on the request path")
            self.grow(1)
        return self._free.pop()

    def release(self, slot: Slot) -> None:
        slot.kill_all()
        slot.set_cpu_low(False)
        self._free.append(slot)

    def close(self) -> None:
        if self.fence is not None:
            self.fence.close()
        for slot in self._free:
            slot.kill_all()
        for parent in self._parents.values():
            for child in sorted(parent.glob("*")):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                parent.rmdir()
        self._free.clear()

    @staticmethod
    def _sweep_stale(wisp_dir: Path) -> None:
        """Remove slot trees left by servers that are gone."""
        for tree in wisp_dir.glob("*"):
            if not tree.name.isdigit() or tree.name == str(os.getpid()):
                continue
            if Path(f"/proc/{tree.name}").exists():
                continue
            for child in tree.glob("*"):
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                tree.rmdir()


def detect() -> int:
    """1 or 2 when this process may manage cgroups of that version, else 0."""
    if os.geteuid() != 0:
        return 0
    if (ROOT / "cgroup.controllers").exists():
        return 2 if os.access(ROOT, os.W_OK) else 0
    if all((ROOT / c).is_dir() for c in V1_CONTROLLERS):
        return 1 if os.access(ROOT / "memory", os.W_OK) else 0
    return 0


def one_off(name: str, memory_mb: int, cpus: float, pids: int) -> Slot | None:
    """A cgroup for one long job (a build) beside the pool's slots, with its own memory,
    CPU and process limits; None without cgroups. ``discard`` removes it."""
    version = detect()
    if version == 0:
        return None
    if version == 2:
        dirs = {"unified": ROOT / "wisp" / name}
        with contextlib.suppress(OSError):
            (ROOT / "cgroup.subtree_control").write_text("+memory +pids +cpu")
            (ROOT / "wisp").mkdir(exist_ok=True)
            (ROOT / "wisp" / "cgroup.subtree_control").write_text("+memory +pids +cpu")
    else:
        dirs = {c: ROOT / c / "wisp" / name for c in V1_CONTROLLERS}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
        _sweep_one_offs(d.parent)
    slot = Slot(-1, dirs, version == 2)
    quota = round(cpus * CPU_PERIOD_US) if cpus > 0 else -1
    if version == 1:
        with contextlib.suppress(OSError):
            slot._file("memory", "memory.swappiness").write_text("0")
        slot._file("pids", "pids.max").write_text(str(pids))
        slot._file("cpu", "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        slot._file("cpu", "cpu.cfs_quota_us").write_text(str(quota))
    else:
        slot._file("pids", "pids.max").write_text(str(pids))
        with contextlib.suppress(OSError):
            value = str(quota) if quota > 0 else "max"
            slot._file("cpu", "cpu.max").write_text(f"{value} {CPU_PERIOD_US}")
    slot.set_memory(memory_mb)
    return slot


def discard(slot: Slot, wait: float = 5.0) -> bool:
    """Kill everything in a one-off group, wait for it to be empty and remove it; False
    when a process was still there after ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        slot.kill_all()
        if not slot.pids():
            break
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    for d in slot.dirs.values():
        with contextlib.suppress(OSError):
            d.rmdir()
    return True


def _sweep_one_offs(parent: Path) -> None:
    """Remove one-off groups (``<kind>-<server pid>-<n>``) left by servers that died."""
    for group in parent.glob("*-*-*"):
        pid = group.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with contextlib.suppress(OSError):
                group.rmdir()  # only an empty group goes: its processes died with the server
