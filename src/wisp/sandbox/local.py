"""Local sandboxes: instances forked from per-runtime zygotes on this host.

Confinement applied in the child before it sees any code (docs/isolation.md has
the layers in order): as root, a pooled cgroup, namespaces, a private read-only
root, a unique unprivileged uid; without root, the same namespaces and private root
inside a user namespace when the host allows one; everywhere rlimits, no_new_privs,
Landlock where the kernel has it and seccomp. A few "stem cells" per runtime are
kept forked and confined ahead of time, so a cold start only loads code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import resource
import signal
import socket
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.runtimes import RuntimeTable
from wisp.sandbox import uids
from wisp.sandbox.base import Instance, Sandbox
from wisp.sandbox.cgroups import CgroupPool, Slot
from wisp.sandbox.egress import EgressNetwork
from wisp.sandbox.instance import LocalInstance, LogCollector, LogPipe
from wisp.sandbox.layers import landlock_abi, landlock_paths, user_namespaces
from wisp.sandbox.protocol import ControlChannel
from wisp.sandbox.zygote import Zygote

log = logging.getLogger("wisp.sandbox")

RLIMITS = {
    "RLIMIT_CORE": 0,
    "RLIMIT_NOFILE": 1024,
    "RLIMIT_FSIZE": 512 * 1024 * 1024,
    # A backstop should the server lose track of a process: seconds of CPU in its whole
    # life (all activations); an instance is retired well before (CPU_RETIRE_NS).
    "RLIMIT_CPU": 3600,
}
RLIMIT_NPROC = 256  # per uid: meaningful only with a uid of the instance's own
# In a user namespace every instance has the server's uid: the count is shared by all.
RLIMIT_NPROC_USERNS = 1024
# At minimal the count is the server's uid's, in the host: what that uid runs at start
# (the server's threads, the operator's shell...) plus this much for all instances.
RLIMIT_NPROC_SHARED = 1024
NPROC_MARGIN = 64  # tasks the server can still start when instances hold the rest
LEVELS = ("minimal", "userns", "standard", "strict")
EGRESS, NO_NETWORK, UNFILTERED = "egress", "none", "egress-unfiltered"
NETWORKS = (EGRESS, NO_NETWORK)
# What an `egress` function gets (LocalSandbox.egress_mode).
FILTERED, LOOPBACK_ONLY, HOST_NETWORK = "filtered", "none", "unfiltered"
TMP_MB = 512  # private /tmp, /var/tmp, /dev/shm; tmpfs pages also count against memory
REFILL_DELAY = 0.05  # seconds after a cold start took a stem cell, while another is left
SETTLE_STEP = 0.5  # seconds between kills while a dead instance's processes linger
SETTLE_WARN = 10.0  # seconds of lingering before the log says which processes hold on


def hidden_runtime_paths(runtimes: RuntimeTable) -> dict[str, list[str]]:
    """Runtime paths under directories sandbox uids cannot traverse (a pyenv Python
    under /root): {hidden ancestor: [paths to expose inside it]}."""
    needed = {Path(sys.base_prefix), *(r.launcher.parent for r in runtimes.runtimes.values())}
    needed.update(Path(p) for p in preload_folders(runtimes, {str(n) for n in needed}))
    found: dict[str, list[str]] = {}
    for path in sorted(needed):
        blocked = [p for p in reversed(path.resolve().parents) if not p.stat().st_mode & 0o001]
        if blocked and str(blocked[0]) not in ("/tmp", "/var/tmp", "/dev/shm"):
            found.setdefault(str(blocked[0]), []).append(str(path.resolve()))
    return found


def venv_paths() -> list[str]:
    """The server interpreter's prefix and site-packages folders, beside its base
    prefix: where a virtual environment keeps its packages and its ``python``."""
    import site

    found = []
    for path in (sys.prefix, sys.exec_prefix, *site.getsitepackages()):
        try:  # a server run as a service user may not see every folder
            if Path(path).is_dir():
                found.append(str(Path(path).resolve()))
        except OSError:
            continue
    return found


def preload_folders(runtimes: RuntimeTable, paths: set[str]) -> list[str]:
    """The folders of the preloaded Python packages that ``paths`` do not already hold
    (a module file's folder: a bind or an exposed path must be a directory)."""
    folders = {
        str(p if p.is_dir() else p.parent) for r in runtimes.runtimes.values() for p in r.preload
    }
    return sorted(f for f in folders if not any(f == q or f.startswith(q + "/") for q in paths))


class LocalSandbox(Sandbox):
    def __init__(
        self, settings: Settings, runtimes: RuntimeTable, code_roots: Sequence[Path] = ()
    ) -> None:
        self.settings = settings
        self.runtimes = runtimes
        self.cgroups = CgroupPool(settings.cgroups != "off", settings.instance_cpus)
        self.as_root = os.geteuid() == 0
        self.zygotes: dict[str, Zygote] = {}
        # Ready, confined instances per (kind, network mode).
        self.stem_cells: dict[tuple[str, str], deque[LocalInstance]] = {}
        self.live: dict[int, LocalInstance] = {}
        self.uids: uids.UidBlock | None = None  # this server's own block (root)
        self._free_uids: list[int] = []
        self._refill: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._settling: set[asyncio.Task[None]] = set()  # dead instances not yet gone
        self._stopping = False
        self.seccomp = platform.machine() == "x86_64"
        self.landlock = landlock_abi()
        # Without root: the namespaces and private root inside a user namespace.
        self.userns, self.userns_refused = (False, "") if self.as_root else user_namespaces()
        self.expose = hidden_runtime_paths(runtimes)
        self.root: list[str] = []  # set in start(): paths bound into a private root
        self.code_roots = list(code_roots)  # unpacked bundles and builds
        nameservers = [a for a in settings.egress_nameservers.split(",") if a.strip()]
        self.egress = EgressNetwork(settings.egress_subnet, nameservers, settings.egress_flows)
        self._links: dict[int, int] = {}  # pid -> its egress /30 (index in the pool)
        self.nproc_shared = RLIMIT_NPROC_SHARED  # minimal's RLIMIT_NPROC, set in start()
        self.isolation = self._describe()

    def _describe(self) -> str:
        layers = ["session"]
        if self.cgroups.available:
            fence = ",cpuset" if self.cgroups.fence is not None else ""
            layers.append(f"cgroup-v{self.cgroups.version}(memory,cpu,pids{fence})")
        namespaces = "namespaces(pid,mount,ipc,uts,cgroup)+private-read-only-root"
        namespaces += "+private-tmp+private-proc"
        if self.as_root:
            layers.append(namespaces + "+uid+no-caps")
        elif self.userns:
            layers.append("user-" + namespaces + "+no-caps")
        else:
            layers.append(f"no-namespaces({self.userns_refused or 'user namespaces refused'})")
        layers.append("no-new-privs+rlimits")
        layers.append(f"landlock(abi {self.landlock})" if self.landlock else "no-landlock(kernel)")
        if self.seccomp:
            layers.append("seccomp")
        mode = self.egress_mode
        if mode == FILTERED:
            layers.append(f"egress-veth({self.egress.subnet})")
        else:
            layers.append(f"egress-{mode}({self.no_filter_reason()})")
        return "+".join(layers)

    @property
    def egress_mode(self) -> str:
        """What an ``egress`` function gets here: ``filtered`` (a network namespace of its
        own, out through the host's nf_tables rules); where none could be installed,
        ``none`` (loopback only; at minimal, no sockets but unix ones) unless the
        operator asked for ``unfiltered`` (the host's network) with
        WISP_NETWORK=egress-unfiltered."""
        if self.egress.active:
            return FILTERED
        return HOST_NETWORK if self.settings.network == UNFILTERED else LOOPBACK_ONLY

    def no_filter_reason(self) -> str:
        if not self.as_root:
            return "no root"
        return self.egress.refused or "not installed yet"

    def egress_note(self) -> str:
        """One line for the start-up banner: what `egress` functions get, and why."""
        mode = self.egress_mode
        if mode == FILTERED:
            return f"filtered (nf_tables table inet {self.egress.table}, {self.egress.subnet})"
        why = self.no_filter_reason()
        if mode == HOST_NETWORK:
            return (
                f"UNFILTERED ({why}; WISP_NETWORK=egress-unfiltered): egress functions "
                "share the host's network, its loopback services included"
            )
        return (
            f"none ({why}): egress functions get no network; to share the host's "
            "network unfiltered instead, set WISP_NETWORK=egress-unfiltered"
        )

    @property
    def level(self) -> str:
        """strict: every layer this design has; standard: root without some; userns:
        not root, namespaces in a user namespace; minimal: not root, no namespaces."""
        if not self.as_root:
            return "userns" if self.userns else "minimal"
        if self.cgroups.available and self.seccomp and self.egress.active:
            return "strict"
        return "standard"

    def root_binds(self) -> list[str]:
        """What a private root holds: the system's programs and libraries, /etc, the
        runtimes (interpreters, launchers) and the code bundles. Nothing else."""
        system = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]
        binds = [p for p in system if os.path.lexists(p)]
        binds += [p for p in self.runtime_paths() if not p.startswith("/usr/")]
        return binds

    async def start(self) -> None:
        slots = self.settings.pool_memory_mb // self.settings.limits.memory_min
        slots += self.settings.stem_cells * len(self.runtimes.runtimes) + 8
        await asyncio.to_thread(self.cgroups.prepare, slots)
        if (self.as_root or self.userns) and self.seccomp:  # pivot_root's number is x86_64's
            self.root = self.root_binds()
        await asyncio.to_thread(self.prepare_isolation)
        log.info("isolation: %s: %s", self.level, self.isolation)
        if self.as_root:
            self.uids = uids.claim(self.settings.uid_base, self.settings.uid_count)
            self._free_uids = list(range(self.uids.last, self.uids.first - 1, -1))
        elif not self.userns:
            self.nproc_shared = await asyncio.to_thread(shared_nproc_limit)
        # Python kinds first: every other kind's stem cells are children of the Python
        # zygote that exec their own launcher once confined (runtimes/__init__.py).
        for kind, runtime in sorted(self.runtimes.runtimes.items(), key=lambda i: bool(i[1].stem)):
            if runtime.stem:
                zygote = self.zygotes[self.runtimes.spawner.kind]
            else:
                zygote = Zygote(runtime, self._on_exit, userns=self.userns)
                await zygote.start()
            self.zygotes[kind] = zygote
            self.stem_cells[(kind, EGRESS)] = deque()
            self._schedule_refill((kind, EGRESS))

    def ready(self) -> dict[tuple[str, str], int]:
        return {pool: len(cells) for pool, cells in self.stem_cells.items()}

    def prepare_isolation(self) -> None:
        """Set up host-wide layers and check the operator's minimum level (idempotent)."""
        if self.as_root:
            self.egress.install()
            self.isolation = self._describe()
        required = self.settings.isolation
        if required and required not in LEVELS:
            raise PlatformError(f"unknown isolation level {required!r}; use one of {LEVELS}")
        if not required and self.level == "minimal":
            # Instances would share the server's uid with no pid namespace: one tenant
            # could signal the server and every other tenant's instances.
            why = self.userns_refused or "no user namespaces"
            raise PlatformError(
                f"this host reaches only isolation 'minimal' ({why}), which is single-tenant "
                "only: pass --isolation minimal (WISP_ISOLATION=minimal) to run anyway"
            )
        if self.level == "minimal" and not self.seccomp and self.egress_mode == LOOPBACK_ONLY:
            raise PlatformError(
                "at isolation 'minimal' without seccomp (x86_64 only) functions cannot be "
                "kept off the network: set WISP_NETWORK=egress-unfiltered to run anyway"
            )
        if required and LEVELS.index(self.level) < LEVELS.index(required):
            self.egress.remove()
            raise PlatformError(
                f"isolation {required!r} is required but this host achieves {self.level!r} "
                f"({self.isolation})"
            )

    async def stop(self) -> None:
        self._stopping = True
        for task in [*self._refill.values(), *self._settling]:
            task.cancel()
        for instance in list(self.live.values()):
            await instance.kill()
        for zygote in self.zygotes.values():
            await zygote.stop()
        await asyncio.to_thread(self.cgroups.close)
        if self.uids is not None:
            self.uids.release()
        await asyncio.to_thread(self.egress.remove)

    async def spawn(self, kind: str, network: str = EGRESS) -> Instance:
        if kind not in self.zygotes:
            raise PlatformError(f"no zygote for the kind {kind!r}")
        if network == UNFILTERED:  # WISP_NETWORK's default: egress, where there is no filter
            network = EGRESS  # too (egress_mode)
        if network not in NETWORKS:
            raise PlatformError(f"unknown network mode {network!r}; use one of {NETWORKS}")
        if network == NO_NETWORK and not (self.as_root or self.userns or self.seccomp):
            raise PlatformError("network 'none' needs root, user namespaces or seccomp")
        pool = (kind, network)
        # A mode's stem cells are kept from its first use on.
        cells = self.stem_cells.setdefault(pool, deque())
        instance = None
        while cells:
            candidate = cells.popleft()
            if candidate.alive:
                instance = candidate
                break
            await candidate.kill()  # exited while it waited: its slot, uid and link go back
        if instance is not None and cells:
            # Another cell is ready for the next request: refill once this cold start has
            # loaded its code, not while it does (forking and booting a stem cell, ~50 ms
            # of CPU for Node, competes for the two cores the init needs).
            asyncio.get_running_loop().call_later(REFILL_DELAY, self._schedule_refill, pool)
            return instance
        self._schedule_refill(pool)
        if instance is None:
            instance = await self._fork(kind, network)
        return instance

    def _schedule_refill(self, pool: tuple[str, str]) -> None:
        task = self._refill.get(pool)
        if self._stopping or (task is not None and not task.done()):
            return
        self._refill[pool] = asyncio.create_task(self._fill(pool))

    async def _fill(self, pool: tuple[str, str]) -> None:
        cells = self.stem_cells[pool]
        while len(cells) < self.settings.stem_cells and not self._stopping:
            try:
                cells.append(await self._fork(*pool))
            except Exception:
                log.exception("could not prepare a %s stem cell (network %s)", *pool)
                await asyncio.sleep(1)

    async def _fork(self, kind: str, network: str = EGRESS) -> LocalInstance:
        zygote = self.zygotes[kind]
        if not zygote.alive:
            log.error("the %s zygote died; restarting it", kind)
            await zygote.start()
        slot = self.cgroups.acquire()
        uid = self._take_uid()
        try:
            link = self.egress.take() if network == EGRESS and self._veth(uid) else None
        except PlatformError:
            self._release(slot, uid)
            raise
        spec = self.fork_spec(kind, network, slot, uid, link)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            pid = await zygote.fork(spec, [theirs.fileno(), out_w, err_w])
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            ours.close()
            self._release(slot, uid, link)
            raise
        finally:
            theirs.close()
            os.close(out_w)
            os.close(err_w)
        loop = asyncio.get_running_loop()
        logs = LogCollector()
        pipes = [os.fdopen(out_r, "rb", buffering=0), os.fdopen(err_r, "rb", buffering=0)]
        transports: list[asyncio.ReadTransport] = []
        try:
            for stream, pipe in zip(("stdout", "stderr"), pipes, strict=True):
                transport, _ = await loop.connect_read_pipe(
                    lambda stream=stream: LogPipe(stream, logs),  # type: ignore[misc]
                    pipe,
                )
                transports.append(transport)
            _, channel = await loop.create_unix_connection(ControlChannel, sock=ours)
        except BaseException:
            # Cancelled (the sandbox is stopping) or failed half-way: leak nothing.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            for transport in transports:
                transport.close()
            for pipe in pipes[len(transports) :]:
                pipe.close()
            ours.close()
            self._release(slot, uid, link)
            raise
        instance = LocalInstance(
            kind, pid, channel, logs, transports, slot, self._dead, self.settings.limits.result_max
        )
        instance.uid = uid
        self.live[pid] = instance
        if link is not None:
            self._links[pid] = link
        if self._stopping:  # forked while stop() was killing the others
            await instance.kill()
            raise PlatformError("the sandbox is stopping")
        return instance

    def _veth(self, uid: int | None) -> bool:
        """Whether an egress instance gets a namespace and veth pair of its own (as
        root, with the host side installed); otherwise see egress_mode."""
        return uid is not None and self.egress.active

    def fork_spec(
        self,
        kind: str,
        network: str,
        slot: Slot | None,
        uid: int | None,
        link: int | None = None,
    ) -> dict[str, Any]:
        """What the zygote's child applies to itself (runtimes/python/confinement.py);
        ``link``: the egress /30 of its veth pair."""
        spec: dict[str, Any] = {
            "op": "fork",
            "cgroups": slot.paths if slot else [],
            "rlimits": {**RLIMITS, "RLIMIT_NPROC": self.nproc_shared},
            "cwd": "/tmp",
            "seccomp": self.seccomp,
        }
        offline = network == NO_NETWORK or self.egress_mode == LOOPBACK_ONLY
        stem = self.runtimes.runtimes[kind].stem
        if stem:
            spec["exec"] = list(stem)
        if uid is not None or self.userns:
            if uid is not None:
                spec["uid"] = uid
                spec["rlimits"]["RLIMIT_NPROC"] = RLIMIT_NPROC
                spec["expose"] = self.expose
            else:
                spec["userns"] = True
                spec["rlimits"]["RLIMIT_NPROC"] = RLIMIT_NPROC_USERNS
            spec["namespaces"] = ["pid", "mount", "ipc", "uts", "cgroup"]
            if link is not None:
                spec["namespaces"].append("net")
                spec["veth"] = self.egress.spec(link)  # and a way out through the host
            elif offline:
                spec["namespaces"].append("net")  # only a loopback of its own
            spec["tmp_mb"] = TMP_MB
            if self.root:
                spec["root"] = self.root
        elif offline and self.seccomp:
            spec["sockets"] = "unix"  # no namespace to give: seccomp refuses other sockets
        if self.landlock:
            private = "namespaces" in spec
            spec["landlock"] = landlock_paths(self.runtime_paths(), private, bool(self.root))
        return spec

    def runtime_paths(self) -> list[str]:
        """Interpreters, launchers, code bundles and the operator's extra paths."""
        paths = {str(Path(sys.base_prefix).resolve())}
        # A virtual environment's own prefix and site-packages (wherever it lives, /tmp
        # included): the preloaded packages and sys.executable are there.
        paths.update(venv_paths())
        for runtime in self.runtimes.runtimes.values():
            paths.add(str(runtime.launcher.parent.resolve()))
            exe = Path(runtime.interpreter).resolve()
            if not str(exe).startswith("/usr/"):
                paths.add(str(exe.parent.parent))  # e.g. a pyenv or /opt prefix
            if runtime.stem:
                paths.add(str(Path(runtime.stem[0]).resolve().parent))
        wanted: list[str | Path] = [*self.settings.sandbox_paths, *self.code_roots]
        paths.update(str(Path(p).resolve()) for p in wanted)
        paths.update(preload_folders(self.runtimes, paths))
        return sorted(paths)

    def _take_uid(self) -> int | None:
        if not self.as_root:
            return None
        if not self._free_uids:
            raise PlatformError("no free sandbox uids: raise uid_count")
        return self._free_uids.pop()

    def _release(self, slot: Slot | None, uid: int | None, link: int | None = None) -> None:
        if slot is not None:
            self.cgroups.release(slot)
        if uid is not None:
            self._free_uids.append(uid)
        if link is not None:
            self.egress.release(link)

    def _dead(self, instance: LocalInstance) -> None:
        """An instance was killed: give back its slot, uid and link once nothing of it
        is left (however long that takes)."""

        async def settle() -> None:
            await self._gone(instance)
            self.live.pop(instance.pid, None)
            self._release(instance.slot, instance.uid, self._links.pop(instance.pid, None))

        if not self._stopping:
            task = asyncio.get_running_loop().create_task(settle())
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        else:
            self.live.pop(instance.pid, None)
            self._links.pop(instance.pid, None)

    async def _gone(self, instance: LocalInstance) -> None:
        """Until the instance's process is reaped (the zygote says so, or it is no longer
        in /proc) and its cgroup holds no process, kill them again every SETTLE_STEP: a
        uid or slot handed to the next tenant while one of these still ran there would
        share its process count, memory and files with them. A process that never dies
        (uninterruptible sleep, frozen) keeps them out of use for good."""
        started = asyncio.get_running_loop().time()
        warned = False
        while True:
            if not instance.exited.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(instance.exited), SETTLE_STEP)
            reaped = instance.exited.done() or not os.path.exists(f"/proc/{instance.pid}")
            left = instance.slot.pids() if instance.slot is not None else []
            if reaped and not left:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(instance.pid, signal.SIGKILL)
            if instance.slot is not None:
                instance.slot.kill_all()
            waited = asyncio.get_running_loop().time() - started
            if waited >= SETTLE_WARN and not warned:
                warned = True
                log.warning(
                    "instance %d killed %.0f s ago still has processes %s; its uid %s and "
                    "cgroup slot stay out of use until they are gone",
                    instance.pid,
                    waited,
                    left or [instance.pid],
                    instance.uid,
                )
            if reaped:  # the exit future is done: only the cgroup is left to poll
                await asyncio.sleep(SETTLE_STEP)

    def _on_exit(self, pid: int, signum: int, code: int | None) -> None:
        instance = self.live.get(pid)
        if instance is not None:
            instance.mark_exited(signum)


def shared_nproc_limit(uid: int | None = None) -> int:
    """RLIMIT_NPROC for instances sharing the server's uid (minimal): the kernel counts
    every task (thread) of the uid, the server's included, so the limit is what the uid
    runs now plus RLIMIT_NPROC_SHARED, and stays NPROC_MARGIN below the server's own
    limit so that a fork bomb at the limit leaves the server room to work."""
    uid = os.getuid() if uid is None else uid
    running = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if int(fields["Uid"].split()[0]) == uid:
            running += int(fields["Threads"])
    limit = running + RLIMIT_NPROC_SHARED
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    ceiling = soft if soft != resource.RLIM_INFINITY else hard
    if ceiling != resource.RLIM_INFINITY:  # an instance may not raise it past the hard one
        limit = max(1, min(limit, ceiling - NPROC_MARGIN))
    return limit
