"""Landlock: the kernel's unprivileged file-access sandbox, applied to an instance.

Standard library only (ctypes for the three system calls). The server hands the
instance a spec of paths by kind of access; this module turns it into a ruleset for
the kernel's Landlock ABI and restricts the calling process (and everything it later
starts) to it. Access to any path not covered is denied, whatever the file modes say.

ABI versions add rights: 2 ``refer`` (link/rename across directories), 3
``truncate``, 5 ``ioctl_dev``, 6 scopes (abstract unix sockets and signals bound
to the instance's own domain). Each is handled when the kernel has it.
"""

import ctypes
import os
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 and aarch64 share these numbers (they came after the tables were unified).
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
EOPNOTSUPP, ENOSYS = 95, 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

# Rights that make sense on a file (the kernel refuses directory rights on one).
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
READ = READ_FILE | READ_DIR
READ_EXECUTE = READ | EXECUTE
# Full use of a scratch directory: create, remove, rename within, run what is unpacked
# there (the instance's domain follows whatever it executes).
READ_WRITE = (
    READ_EXECUTE
    | WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_SYM
    | REFER
    | TRUNCATE
)
DEVICE = READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV
ACCESS = {"rx": READ_EXECUTE, "ro": READ, "rw": READ_WRITE, "dev": DEVICE, "ls": READ_DIR}


def _syscall(number, *args):
    # Integers as longs: a variadic int may reach the kernel with garbage above 32 bits.
    wrapped = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _libc.syscall(ctypes.c_long(number), *wrapped)


def abi_version():
    """The kernel's Landlock ABI (1, 2, ...), or 0 when it has none or it is disabled."""
    if platform.machine() not in ("x86_64", "aarch64"):
        return 0
    version = _syscall(SYS_CREATE_RULESET, None, 0, CREATE_RULESET_VERSION)
    return max(int(version), 0)


def handled_fs(abi):
    """Every file-system right the kernel's ABI knows: all are denied unless granted."""
    if abi < 1:
        return 0
    rights = (MAKE_SYM << 1) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def scopes(abi):
    return SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0


def rules(paths, abi, isdir=os.path.isdir):
    """[(path, rights)] for ``paths`` ({"rx"|"ro"|"rw"|"dev"|"ls": [path, ...]}), each
    trimmed to what ``abi`` handles and, for a non-directory, to file rights."""
    handled = handled_fs(abi)
    found = []
    for kind, listed in paths.items():
        if kind not in ACCESS:
            raise ValueError(f"unknown Landlock access {kind!r}; use one of {sorted(ACCESS)}")
        for path in listed:
            rights = ACCESS[kind] & handled
            if not isdir(path):
                rights &= FILE_RIGHTS
            found.append((path, rights))
    return found


def ruleset_attr(abi):
    """struct landlock_ruleset_attr, as long as the ABI's (8, 16 or 24 bytes)."""
    fields = [handled_fs(abi)]
    if abi >= 4:
        fields.append(0)  # handled_access_net: TCP is left to the egress layer
    if abi >= 6:
        fields.append(scopes(abi))
    return b"".join(value.to_bytes(8, "little") for value in fields)


def restrict(paths, abi=None):
    """Confine this process to ``paths``. Returns the ABI applied, 0 when the kernel
    has no Landlock (the caller reports that); raises OSError when it has one but the
    ruleset cannot be applied."""
    abi = abi_version() if abi is None else abi
    if abi < 1:
        return 0
    attr = ruleset_attr(abi)
    ruleset = _syscall(SYS_CREATE_RULESET, attr, len(attr), 0)
    if ruleset < 0:
        errno = ctypes.get_errno()
        if errno in (ENOSYS, EOPNOTSUPP):
            return 0
        raise OSError(errno, f"landlock_create_ruleset: {os.strerror(errno)}")
    try:
        for path, rights in rules(paths, abi):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # not on this host: nothing to grant
            try:
                # struct landlock_path_beneath_attr is packed: u64 rights, s32 fd.
                attr = rights.to_bytes(8, "little") + fd.to_bytes(4, "little", signed=True)
                if _syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, attr, 0) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"landlock_add_rule {path}: {os.strerror(errno)}")
            finally:
                os.close(fd)
        if _syscall(SYS_RESTRICT_SELF, ruleset, 0) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"landlock_restrict_self: {os.strerror(errno)}")
    finally:
        os.close(ruleset)
    return abi
