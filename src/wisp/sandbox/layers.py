"""What this host's kernel offers the sandbox, and what Landlock lets an instance touch.

Probed once when the server starts: the Landlock ABI (a system call from this
process) and, when not root, whether an unprivileged user namespace can be made and
used (a short-lived child tries, so nothing changes in the server itself).
"""

from __future__ import annotations

import ctypes
import platform
import subprocess
import sys
from collections.abc import Iterable

SYS_LANDLOCK_CREATE_RULESET = 444  # x86_64 and aarch64
LANDLOCK_CREATE_RULESET_VERSION = 1

# Read-only system files a runtime may need: the loader's cache, time zones, name
# resolution, users and groups, TLS trust stores, mime types, PHP's ini files.
# Everything else under /etc (shadow, ssh keys, the platform's own config) stays closed.
SYSTEM_READ = (
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/mime.types",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
    "/etc/php",
)
# Programs and libraries: read and execute.
SYSTEM_EXECUTE = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# Without a private /proc the host's is visible: only the instance's own entry (and a
# few system-wide figures runtimes read for sizing) are opened to it.
OWN_PROC = ("/proc/self", "/proc/meminfo", "/proc/cpuinfo", "/proc/stat", "/proc/loadavg")


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when it has none (or it is disabled)."""
    if platform.machine() not in ("x86_64", "aarch64"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(
        ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET),
        None,
        ctypes.c_long(0),
        ctypes.c_long(LANDLOCK_CREATE_RULESET_VERSION),
    )
    return max(int(version), 0)


def landlock_paths(
    runtime_paths: Iterable[str], private_proc: bool, private_root: bool
) -> dict[str, list[str]]:
    """The Landlock grants of an instance: read+execute on programs, runtimes and code;
    read on the few system files above and /proc; read-write on its scratch
    directories and the harmless devices. Anything else is denied. In a private root
    every directory may be listed (it holds only what is granted anyway)."""
    return {
        "rx": [*SYSTEM_EXECUTE, *sorted(set(runtime_paths))],
        "ro": [*SYSTEM_READ, *(("/proc",) if private_proc else OWN_PROC)],
        "rw": list(SCRATCH),
        "dev": list(DEVICES),
        "ls": ["/"] if private_root else [],
    }


# A child that makes the namespaces an instance needs, maps its ids, mounts a tmpfs
# and a /proc of its own: what the user-namespace fallback relies on.
_USERNS_PROBE = """
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
uid, gid = os.getuid(), os.getgid()
if libc.unshare(0x10000000) != 0:
    raise SystemExit("unshare(CLONE_NEWUSER): " + os.strerror(ctypes.get_errno()))
maps = (("uid_map", f"{uid} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{gid} {gid} 1"))
for name, text in maps:
    with open("/proc/self/" + name, "w") as f:
        f.write(text)
if libc.unshare(0x20000000 | 0x00020000 | 0x08000000 | 0x04000000 | 0x40000000) != 0:
    raise SystemExit("unshare(pid, mount, ipc, uts, net): " + os.strerror(ctypes.get_errno()))
pid = os.fork()
if pid == 0:
    code = 0
    if libc.mount(None, b"/", None, 0x4000 | (1 << 18), None) != 0:
        code = 3
    elif libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 6, b"size=1m") != 0:
        code = 4
    elif libc.mount(b"proc", b"/proc", b"proc", 14, None) != 0:
        code = 5
    os._exit(code)
_, status = os.waitpid(pid, 0)
code = os.waitstatus_to_exitcode(status)
if code:
    step = {3: "private mounts", 4: "tmpfs", 5: "/proc"}.get(code, f"exit {code}")
    raise SystemExit(step + " inside the namespaces: " + os.strerror(1))
"""


def user_namespaces() -> tuple[bool, str]:
    """Whether this (unprivileged) process may make the namespaces an instance needs;
    when not, why (e.g. ``user.max_user_namespaces`` is 0, or a security module forbids
    unprivileged user namespaces)."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _USERNS_PROBE],
            capture_output=True,
            text=True,
            timeout=10,
            env={},
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    if done.returncode == 0:
        return True, ""
    lines = done.stderr.strip().splitlines()
    return False, lines[-1] if lines else f"exit {done.returncode}"
