"""Where a build's commands run: a sandbox like a function instance's, made per command.

Each command (``build.sh``, pip, npm, ``go build``) runs under
``runtimes/python/build_launcher.py``, which
applies the instance confinement (runtimes/python/confinement.py) to a fresh process:

- its own uid as root, from a block of sandbox uids no instance of any server holds
  (``uids.claim``); without root, the server's uid inside a user namespace of its own
  with every capability dropped;
- pid, mount, ipc, uts, cgroup and network namespaces; a private read-only root with
  only the system's programs and libraries, ``/etc`` and the runtimes, plus the
  build's source (``/build/src``) and output (``/build/out``) read-write and the build
  cache read-only (``/build/cache``); private ``/tmp`` and ``/proc``;
- a cgroup of its own (memory, CPU, pids) as root; rlimits, no_new_privs, Landlock,
  seccomp everywhere;
- a wall-clock limit; at the end pid 1 exits and the kernel kills whatever is left in
  its namespace, and the cgroup is emptied and removed;
- no network but a proxy to the allowed package registries (proxy.py).

Below the ``userns`` level (no root, no user namespaces) nothing here can hold a
build, so builds are refused: this fails closed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wisp.builds.proxy import RegistryProxy
from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.runtimes import HERE as RUNTIMES
from wisp.sandbox import cgroups, uids
from wisp.sandbox.layers import landlock_paths
from wisp.sandbox.local import LocalSandbox

log = logging.getLogger("wisp.builds")

LAUNCH = RUNTIMES / "python" / "build_launcher.py"
HEADER = struct.Struct(">I")
SRC, OUT, CACHE = "/build/src", "/build/out", "/build/cache"
PROXY = "http://127.0.0.1:3128"  # build_launcher.PROXY_PORT, on the sandbox's own loopback
SETUP_TIMEOUT = 30.0
PIDS_MAX = 1024
TMP_MB = 1024  # private /tmp (Go's build cache, npm's cache, pip's unpacking)
OUTPUT_MAX = 256 * 1024  # bytes of a command's output kept (its end)
WATCH_INTERVAL = 1.0  # seconds between checks of what a build has written
FILES_MAX = 200_000  # entries a build may make in its folders (node_modules: ~10-50k)
RLIMITS = {
    "RLIMIT_CORE": 0,
    "RLIMIT_NOFILE": 4096,
    "RLIMIT_FSIZE": 1024 * 1024 * 1024,
    "RLIMIT_NPROC": 1024,
}
# More of /etc than an instance reads: what pip, npm and git look at to describe the
# host or take the operator's own settings (pip.conf may name the operator's mirror).
BUILD_READ = (
    "/etc/os-release",
    "/etc/debian_version",
    "/etc/lsb-release",
    "/etc/pip.conf",
    "/etc/xdg/pip",
    "/etc/npmrc",
    "/etc/gitconfig",
)
_groups = itertools.count()


class SetupFailed(PlatformError):
    """The sandbox could not be made: the command did not run at all."""


class BuildsRefused(SetupFailed):
    """This server cannot confine a build at all (its isolation level is too low): a
    setting of the server, not a failure, so callers get 501 rather than a 500."""

    status = 501
    code = "builds_unavailable"


@dataclass(frozen=True)
class Mount:
    host: Path
    inside: str
    writable: bool


@dataclass
class Outcome:
    code: int
    output: str
    timed_out: bool
    refused: list[str] = field(default_factory=list)  # registries the proxy refused
    overflow: str = ""  # why it was stopped for writing too much (disk or files)


class BuildUids:
    """A build's uid: from a block of sandbox uids claimed (flock) while builds run, so
    no instance of this or another server has it; each build gets the next one."""

    def __init__(self, base: int, count: int, lock_dir: Path = uids.LOCK_DIR) -> None:
        self.base, self.count, self.lock_dir = base, count, lock_dir
        self._block: uids.UidBlock | None = None
        self._busy: set[int] = set()
        self._next = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self) -> Iterator[int]:
        with self._lock:
            if self._block is None:
                self._block = uids.claim(self.base, self.count, self.lock_dir)
            block = self._block
            for _ in range(block.count):
                uid = block.first + self._next % block.count
                self._next += 1
                if uid not in self._busy:
                    break
            else:
                raise PlatformError("no free build uids: raise uid_count")
            self._busy.add(uid)
        try:
            yield uid
        finally:
            with self._lock:
                self._busy.discard(uid)
                if not self._busy and self._block is not None:
                    self._block.release()
                    self._block = None


class BuildSandbox:
    def __init__(self, sandbox: LocalSandbox, settings: Settings) -> None:
        self.settings = settings
        self.as_root = sandbox.as_root
        self.userns = sandbox.userns
        self.seccomp = sandbox.seccomp
        self.landlock = sandbox.landlock
        self.cgroups = settings.cgroups != "off" and sandbox.cgroups.version != 0
        self.registries = [r.strip() for r in settings.build_registries.split(",") if r.strip()]
        code = {str(p.resolve()) for p in sandbox.code_roots}  # other tenants' code: not here
        self.binds = [p for p in sandbox.root_binds() if p not in code]
        self.runtime_paths = [p for p in sandbox.runtime_paths() if p not in code]
        self.uids = BuildUids(settings.uid_base, settings.uid_count)
        self.refused = ""
        if not (self.as_root or self.userns):
            reason = sandbox.userns_refused or "user namespaces refused"
            self.refused = (
                "server-side builds need a sandbox with namespaces: this server runs "
                f"without root and without user namespaces ({reason})"
            )
        elif not self.seccomp:  # pivot_root's number, like the instances' private root
            self.refused = "server-side builds need a private root, made on x86_64 only"

    def describe(self) -> str:
        """One line for the start-up banner: how builds are confined here, or why not."""
        if self.refused:
            return f"refused ({self.refused})"
        layers = ["uid-per-build" if self.as_root else "user-namespace"]
        layers.append("namespaces(pid,mount,ipc,uts,cgroup,net)+private-root")
        if self.cgroups:
            layers.append(
                f"cgroup(memory {self.settings.build_memory_mb} MB,"
                f"cpus {self.settings.build_cpus:g},pids {PIDS_MAX})"
            )
        layers.append(f"landlock(abi {self.landlock})" if self.landlock else "no-landlock")
        layers.append("seccomp")
        return f"{'+'.join(layers)}; network: {', '.join(self.registries) or 'none'}"

    @contextlib.contextmanager
    def uid(self) -> Iterator[int | None]:
        """The uid one build's commands run as (None: the server's, in a user namespace)."""
        if self.refused:
            raise BuildsRefused(self.refused)
        if not self.as_root:
            yield None
            return
        with self.uids.lease() as uid:
            yield uid

    def run(
        self,
        argv: list[str],
        *,
        uid: int | None,
        cwd: str,
        env: dict[str, str],
        mounts: list[Mount],
        network: bool,
        timeout: float,
    ) -> Outcome:
        if self.refused:
            raise BuildsRefused(self.refused)
        group = None
        if self.cgroups:
            name = f"build-{os.getpid()}-{next(_groups)}"
            try:
                group = cgroups.one_off(
                    name, self.settings.build_memory_mb, self.settings.build_cpus, PIDS_MAX
                )
            except OSError as exc:
                raise SetupFailed(f"the build's cgroup could not be made: {exc}") from None
        spec = self._spec(argv, uid, cwd, env, mounts, network, group)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        proxy: RegistryProxy | None = None
        proc: subprocess.Popen[bytes] | None = None
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCH), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env={},
                cwd="/",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            theirs.close()
            data = json.dumps(spec).encode()
            ours.sendall(HEADER.pack(len(data)) + data)
            ours.settimeout(SETUP_TIMEOUT)
            try:
                message, fds, _, _ = socket.recv_fds(ours, 4096, 1)
            except TimeoutError:
                raise SetupFailed("the build sandbox did not start in time") from None
            if fds:
                proxy = RegistryProxy(socket.socket(fileno=fds[0]), self.registries)
            if not message.startswith(b"R"):
                why = message[1:].decode(errors="replace") or f"exit {proc.wait(SETUP_TIMEOUT)}"
                raise SetupFailed(f"the build sandbox could not be set up: {why}")
            assert proc.stdout is not None
            watch = DiskWatch([m.host for m in mounts if m.writable], self.settings.build_disk_mb)
            deadline = time.monotonic() + timeout
            output, timed_out = _collect(proc, deadline, watch)
            try:
                # The output may end (closed) long before the command does.
                code = proc.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                proc.kill()
                code, timed_out = proc.wait(), True
            refused = list(proxy.refused) if proxy else []
            return Outcome(code, output, timed_out, refused, watch.overflow)
        finally:
            theirs.close()
            ours.close()
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
            if proxy is not None:
                proxy.close()
            if group is not None and not cgroups.discard(group):
                log.error("a build's cgroup still has processes: %s", group.paths)

    def _spec(
        self,
        argv: list[str],
        uid: int | None,
        cwd: str,
        env: dict[str, str],
        mounts: list[Mount],
        network: bool,
        group: cgroups.Slot | None,
    ) -> dict[str, object]:
        spec: dict[str, object] = {
            "cgroups": group.paths if group else [],
            "rlimits": dict(RLIMITS),
            "namespaces": ["pid", "mount", "ipc", "uts", "cgroup", "net"],
            "root": self.binds,
            "mounts": [[str(m.host), m.inside, m.writable] for m in mounts],
            "tmp_mb": TMP_MB,
            "cwd": cwd,
            "seccomp": self.seccomp,
            "argv": argv,
            "env": env,
            "proxy": network,
        }
        if uid is not None:
            spec["uid"] = uid
        else:
            spec["userns"] = True
        if self.landlock:
            paths = landlock_paths(self.runtime_paths, True, True)
            paths["rw"] += [m.inside for m in mounts if m.writable]
            paths["ro"] += [*BUILD_READ, *(m.inside for m in mounts if not m.writable)]
            spec["landlock"] = paths
        return spec


class DiskWatch:
    """A build's writable folders are on the host's disk: their size and file count are
    checked every WATCH_INTERVAL seconds, and the build is stopped past its share."""

    def __init__(self, folders: list[Path], megabytes: int) -> None:
        self.folders = folders
        self.limit = megabytes * 1024 * 1024
        self.overflow = ""
        self._next = time.monotonic() + WATCH_INTERVAL

    def due(self) -> bool:
        return time.monotonic() >= self._next

    def over(self) -> bool:
        started = time.monotonic()
        size, entries = usage(self.folders)
        # A big tree (node_modules) takes a while to walk: never spend over a fifth of
        # the time on it.
        self._next = time.monotonic() + max(WATCH_INTERVAL, 4 * (time.monotonic() - started))
        if size > self.limit:
            self.overflow = f"it wrote more than {self.limit // (1024 * 1024)} MB"
        elif entries > FILES_MAX:
            self.overflow = f"it made more than {FILES_MAX} files"
        return bool(self.overflow)


def usage(folders: list[Path]) -> tuple[int, int]:
    """Bytes on disk (each inode once) and entries under ``folders``."""
    seen: set[tuple[int, int]] = set()
    size = entries = 0
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            for name in dirnames + filenames:
                entries += 1
                with contextlib.suppress(OSError):
                    info = os.lstat(os.path.join(dirpath, name))
                    if (info.st_dev, info.st_ino) not in seen:
                        seen.add((info.st_dev, info.st_ino))
                        size += info.st_blocks * 512
    return size, entries


def _collect(proc: subprocess.Popen[bytes], deadline: float, watch: DiskWatch) -> tuple[str, bool]:
    """The command's output (its last OUTPUT_MAX bytes) until it ends or ``deadline``;
    stopped early when ``watch`` finds it writing too much."""
    assert proc.stdout is not None
    kept = bytearray()
    timed_out = stopped = False
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if not stopped and (left <= 0 or (watch.due() and watch.over())):
                timed_out, stopped = left <= 0, True
                proc.kill()  # pid 1 dies with it (parent-death signal), and its namespace
                deadline = time.monotonic() + 5  # to read what is left
                continue
            if left <= 0:
                break
            if not selector.select(timeout=min(left, 1.0)):
                continue
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:
                break
            kept += chunk
            if len(kept) > OUTPUT_MAX:
                del kept[: len(kept) - OUTPUT_MAX]
    return kept.decode("utf-8", "replace"), timed_out
