"""Confinement applied in a freshly forked instance before it sees any code.

Standard library only (ctypes for the system calls Python does not wrap); imported
by the zygote once, so applying it costs no import on the fork path. The order
matters: cgroup, namespaces (with an egress instance's veth pair) and private
mounts while still root; then rlimits, the capability bounding set, uid/gid,
no_new_privs, the parent-death signal, Landlock, and the seccomp filter last, once
nothing privileged is left to do.

Without root, the zygote enters a user namespace of its own first
(``enter_user_namespace``): as root *in that namespace* its children can make the
same pid, mount, ipc, uts and net namespaces and the private root, then drop every
capability they hold there.
"""

import ctypes
import os
import platform
import resource
import signal
import socket
import struct

import landlock
import veth

_libc = ctypes.CDLL(None, use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = {
    "mount": CLONE_NEWNS,
    "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC,
    "net": CLONE_NEWNET,
    "cgroup": CLONE_NEWCGROUP,
}
ANY_NEW_NAMESPACE = (
    CLONE_NEWNS
    | CLONE_NEWCGROUP
    | CLONE_NEWUTS
    | CLONE_NEWIPC
    | CLONE_NEWUSER
    | CLONE_NEWPID
    | CLONE_NEWNET
)

MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
LAST_CAP = 40

# Directories every user can write on a host: each instance gets its own, empty
# and size-capped (tmpfs pages are also charged to the instance's memory cgroup).
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def confine(spec):
    """Apply ``spec`` (built by the server's LocalSandbox) to this process."""
    os.setsid()
    for path in spec.get("cgroups", ()):
        with open(os.path.join(path, "cgroup.procs"), "w") as procs:
            procs.write("0")  # "0" is the writer: our pid may be 1 in a pid namespace
    namespaces = spec.get("namespaces") or ()
    own_pid_namespace = "pid" in namespaces  # the zygote already placed us there
    if namespaces:
        flags = 0
        for name in namespaces:
            flags |= NAMESPACE_FLAGS.get(name, 0)
        link = spec.get("veth")
        if link:
            # The host's namespace is reachable only through a socket opened before
            # leaving it: the veth pair is made through it once ours exists.
            host = veth.Netlink()
            try:
                veth.connect(host, link, lambda: check(_libc.unshare(flags), "unshare"))
            finally:
                host.close()
        else:
            check(_libc.unshare(flags), "unshare")
        if "mount" in namespaces and spec.get("root"):
            private_root(
                spec["root"], spec.get("tmp_mb") or 512, own_pid_namespace, spec.get("mounts") or ()
            )
        elif "mount" in namespaces:
            private_mounts(spec.get("tmp_mb") or 512)
            for hidden, exposed in (spec.get("expose") or {}).items():
                expose_within(hidden, exposed)
            if own_pid_namespace:
                check(
                    _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None),
                    "mount /proc",
                )
        if "uts" in namespaces:
            socket.sethostname("wisp")
        if "net" in namespaces and not link:
            loopback_up()
    for name, value in (spec.get("rlimits") or {}).items():
        limit = int(value)
        resource.setrlimit(getattr(resource, name), (limit, limit))
    uid = spec.get("uid")
    if uid is not None:
        for cap in range(LAST_CAP + 1):
            _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # unknown caps fail: fine
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # leaving uid 0 clears the permitted and effective sets
    elif spec.get("userns"):
        drop_capabilities()  # no uid to leave: the namespace's caps go explicitly
    check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    # Changing uid clears the parent-death signal: arm it afterwards, then make sure
    # the zygote did not die before it was armed (in a pid namespace the parent, being
    # outside it, shows as 0).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != (0 if own_pid_namespace else spec["zygote"]):
        os._exit(1)
    os.umask(0o077)
    os.chdir(spec.get("cwd") or "/tmp")
    if spec.get("landlock"):
        landlock.restrict(spec["landlock"])
    if spec.get("seccomp"):
        install_seccomp(unix_only=spec.get("sockets") == "unix")


# -- without root: a user namespace -------------------------------------------------

CAPABILITY_VERSION_3 = 0x20080522
SYS_CAPSET = 126  # x86_64 (the private root and seccomp are x86_64-only too)
SYS_CLONE = 56


def enter_user_namespace():
    """Make this process (the zygote) root of a user namespace of its own, mapping only
    its own uid and gid: it gains capabilities over namespaces it creates, none over
    the host."""
    uid, gid = os.getuid(), os.getgid()
    check(_libc.unshare(CLONE_NEWUSER), "unshare(CLONE_NEWUSER)")
    for name, text in (
        ("uid_map", f"{uid} {uid} 1"),
        ("setgroups", "deny"),
        ("gid_map", f"{gid} {gid} 1"),
    ):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def clone_into_pid_namespace():
    """fork() into a new pid namespace with clone(CLONE_NEWPID).

    Inside a user namespace the zygote cannot setns() back into its first pid
    namespace (that one belongs to the host's user namespace), so the unshare-then-fork
    of the root path does not work; clone makes the namespace for this child only.
    Python's own before/after-fork hooks run as they do for os.fork().
    """
    api = ctypes.pythonapi
    call = ctypes.PyDLL(None, use_errno=True).syscall  # keeps the GIL across the call
    call.restype = ctypes.c_long
    api.PyOS_BeforeFork()
    flags = ctypes.c_ulong(CLONE_NEWPID | signal.SIGCHLD)
    pid = call(ctypes.c_long(SYS_CLONE), flags, None, None, None, ctypes.c_ulong(0))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    errno = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(errno, f"clone(CLONE_NEWPID): {os.strerror(errno)}")
    return pid


def drop_capabilities():
    """Empty the bounding, effective, permitted and inheritable sets."""
    for cap in range(LAST_CAP + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    header = struct.pack("Ii", CAPABILITY_VERSION_3, 0)
    data = bytes(24)  # two __user_cap_data_struct, all zero
    check(_libc.syscall(SYS_CAPSET, header, data), "capset")


def private_mounts(tmp_mb):
    # Stop mount events from propagating back to the host before changing anything.
    check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    for path in PRIVATE_DIRS:
        if not os.path.isdir(path):
            continue
        options = f"size={tmp_mb}m,mode=1777".encode()
        check(
            _libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options),
            f"tmpfs on {path}",
        )


MS_BIND = 4096
MS_MOVE = 8192
MS_RDONLY = 1
MS_REMOUNT = 32


def expose_within(hidden, exposed):
    """Replace ``hidden`` (a private directory, e.g. /root) with an empty one in which
    only ``exposed`` paths (e.g. the interpreter under /root/.pyenv) appear, read-only.

    The runtime may live under a directory the sandbox uid cannot traverse; this
    makes it reachable while hiding everything else there.
    """
    staged = []
    for index, path in enumerate(exposed):
        stage = f"/tmp/.wisp-expose-{index}"
        os.mkdir(stage, 0o755)
        check(
            _libc.mount(path.encode(), stage.encode(), None, MS_BIND | MS_REC, None), f"bind {path}"
        )
        staged.append((stage, path))
    check(
        _libc.mount(
            b"tmpfs", hidden.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"
        ),
        f"tmpfs on {hidden}",
    )
    previous = os.umask(0o022)  # the server runs with 077: these must be traversable
    for stage, path in staged:
        os.makedirs(path, 0o755, exist_ok=True)
        check(_libc.mount(stage.encode(), path.encode(), None, MS_MOVE, None), f"move {path}")
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        check(_libc.mount(None, path.encode(), None, flags, None), f"read-only {path}")
        os.rmdir(stage)
    os.umask(previous)
    # The tmpfs itself is left read-only too: nothing new appears beside the exposed paths.
    check(
        _libc.mount(
            None, hidden.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None
        ),
        f"read-only {hidden}",
    )


MNT_DETACH = 2
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def private_root(binds, tmp_mb, with_proc, mounts=()):
    """Pivot into a fresh root holding only ``binds`` (read-only), minimal /dev, a
    private /proc and size-capped tmpfs /tmp, /var/tmp and /dev/shm; then make the
    root itself read-only. The host's other files are simply not there.

    ``mounts``: ``[host directory, path inside, writable]`` (a build's own source and
    output folders, at paths of their own inside)."""
    check(_libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
    # Held open before the tmpfs below covers /tmp, where a host directory may lie (a
    # build's folders, or the server's virtual environment under /tmp).
    held = [
        (os.open(host, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), inside, writable)
        for host, inside, writable in mounts
    ]
    sources = []  # (path, symlink target or None, fd or None, is a directory)
    for path in binds:
        if os.path.islink(path):
            sources.append((path, os.readlink(path), None, False))
        elif os.path.exists(path):
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            sources.append((path, None, fd, os.path.isdir(path)))
    new = "/tmp"  # the host's /tmp is hidden anyway: build the new root over it
    check(
        _libc.mount(b"tmpfs", new.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=8m"),
        "tmpfs root",
    )
    previous = os.umask(0o022)
    try:
        # The private /tmp, /var/tmp and /dev/shm first: a bind below one of them (a
        # virtual environment under /tmp) is then mounted on top, not hidden by it.
        capped = f"size={tmp_mb}m,mode=1777".encode()
        for path in PRIVATE_DIRS:
            os.makedirs(new + path, 0o755, exist_ok=True)
            check(
                _libc.mount(
                    b"tmpfs", (new + path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, capped
                ),
                f"tmpfs on {path}",
            )
        for path, link, fd, is_dir in sources:
            target = new + path
            if link is not None:
                os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
                os.symlink(link, target)
                continue
            if is_dir:
                os.makedirs(target, 0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
                open(target, "w").close()
            bind_read_only(f"/proc/self/fd/{fd}", target)
            os.close(fd)
        for fd, inside, writable in held:
            target = new + inside
            os.makedirs(target, 0o755, exist_ok=True)
            source = f"/proc/self/fd/{fd}"
            if writable:
                check(
                    _libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None),
                    f"bind {inside}",
                )
                flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV
                check(_libc.mount(None, target.encode(), None, flags, None), f"remount {inside}")
            else:
                bind_read_only(source, target)
            os.close(fd)
        os.makedirs(new + "/dev", 0o755, exist_ok=True)
        for name in DEVICES:
            device = "/dev/" + name
            if os.path.exists(device):
                open(new + device, "w").close()
                check(
                    _libc.mount(device.encode(), (new + device).encode(), None, MS_BIND, None),
                    f"bind {device}",
                )
        if with_proc:
            os.makedirs(new + "/proc", 0o755, exist_ok=True)
            check(
                _libc.mount(
                    b"proc",
                    (new + "/proc").encode(),
                    b"proc",
                    MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    None,
                ),
                "mount /proc",
            )
        os.mkdir(new + "/.old", 0o700)
    finally:
        os.umask(previous)
    check(_libc.syscall(SYS_PIVOT_ROOT, new.encode(), (new + "/.old").encode()), "pivot_root")
    os.chdir("/")
    check(_libc.umount2(b"/.old", MNT_DETACH), "detach the old root")
    os.rmdir("/.old")
    check(
        _libc.mount(None, b"/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None),
        "read-only root",
    )


def bind_read_only(source, target):
    check(
        _libc.mount(source.encode(), target.encode(), None, MS_BIND | MS_REC, None),
        f"bind {source}",
    )
    flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
    check(_libc.mount(None, target.encode(), None, flags, None), f"read-only {source}")


SYS_PIVOT_ROOT = 155  # x86_64; the server only asks for a private root there


def loopback_up():
    """A new network namespace has only ``lo``, and it is down."""
    import fcntl

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


# -- seccomp ------------------------------------------------------------------------

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
RET_ALLOW = 0x7FFF0000
RET_KILL_PROCESS = 0x80000000
EPERM, EACCES, ENOSYS = 1, 13, 38
SOCKET_X86_64 = 41
AF_UNIX = 1

# x86_64 numbers of calls no function needs and that widen the kernel's attack
# surface or reach outside the sandbox.
DENIED_X86_64 = {
    "ptrace": 101,
    "syslog": 103,
    "personality": 135,
    "vhangup": 153,
    "pivot_root": 155,
    "adjtimex": 159,
    "chroot": 161,
    "acct": 163,
    "settimeofday": 164,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "iopl": 172,
    "ioperm": 173,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "clock_settime": 227,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "mount_setattr": 442,
}
# Answered "not implemented" so that runtimes fall back: glibc retries clone3 as
# clone (whose flags the filter can inspect), libuv does without io_uring.
ENOSYS_X86_64 = {
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "clone3": 435,
}
CLONE_X86_64 = 56


def seccomp_supported():
    return platform.machine() == "x86_64"


def _insn(code, jt, jf, k):
    return struct.pack("HBBI", code, jt, jf, k)


def seccomp_program(unix_only=False):
    """The filter; ``unix_only``: socket() of any family but AF_UNIX fails with EACCES
    (an instance that must stay off the network but has no namespace of its own)."""
    ld_abs, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    errno = lambda e: 0x00050000 | e  # noqa: E731
    prog = [
        _insn(ld_abs, 0, 0, 4),  # seccomp_data.arch
        _insn(jeq, 1, 0, AUDIT_ARCH_X86_64),
        _insn(ret, 0, 0, RET_KILL_PROCESS),
        _insn(ld_abs, 0, 0, 0),  # seccomp_data.nr
        _insn(jge, 0, 1, X32_SYSCALL_BIT),
        _insn(ret, 0, 0, errno(EPERM)),
    ]
    for nr in sorted(DENIED_X86_64.values()):
        prog += [_insn(jeq, 0, 1, nr), _insn(ret, 0, 0, errno(EPERM))]
    for nr in sorted(ENOSYS_X86_64.values()):
        prog += [_insn(jeq, 0, 1, nr), _insn(ret, 0, 0, errno(ENOSYS))]
    if unix_only:
        prog += [
            _insn(jeq, 0, 4, SOCKET_X86_64),
            _insn(ld_abs, 0, 0, 16),  # low half of args[0]: the address family
            _insn(jeq, 1, 0, AF_UNIX),
            _insn(ret, 0, 0, errno(EACCES)),
            _insn(ret, 0, 0, RET_ALLOW),
        ]
    prog += [
        _insn(jeq, 0, 4, CLONE_X86_64),
        _insn(ld_abs, 0, 0, 16),  # low half of args[0]: the clone flags
        _insn(jset, 0, 1, ANY_NEW_NAMESPACE),
        _insn(ret, 0, 0, errno(EPERM)),
        _insn(ret, 0, 0, RET_ALLOW),
        _insn(ret, 0, 0, RET_ALLOW),
    ]
    return b"".join(prog)


def install_seccomp(unix_only=False):
    code = seccomp_program(unix_only)
    count = len(code) // 8
    buffer = ctypes.create_string_buffer(code, len(code))

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(count, ctypes.cast(buffer, ctypes.c_void_p))
    check(
        _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0),
        "seccomp",
    )
