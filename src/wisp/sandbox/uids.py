"""A block of sandbox uids that is this server's alone.

Two Wisp servers on one host (a developer's and a test run, or several behind one
balancer) must never hand the same uid to two instances: the process count
(RLIMIT_NPROC) and whatever a uid may touch are per uid. Each server claims the lowest
free block of ``uid_count`` uids from ``uid_base`` with an exclusive flock on a file
named after the block, held for as long as the server lives (the kernel drops it when
the process dies, however it dies).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from wisp.errors import PlatformError

LOCK_DIR = Path("/run/wisp")
BLOCKS = 16


class UidBlock:
    def __init__(self, fd: int, first: int, count: int) -> None:
        self._fd: int | None = fd
        self.first = first
        self.count = count

    @property
    def last(self) -> int:
        return self.first + self.count - 1

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the only descriptor drops the lock
            self._fd = None


def claim(base: int, count: int, lock_dir: Path = LOCK_DIR) -> UidBlock:
    """The lowest block of ``count`` uids from ``base`` that no live server holds."""
    lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index in range(BLOCKS):
        first = base + index * count
        fd = os.open(lock_dir / f"uids-{first}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidBlock(fd, first, count)
    raise PlatformError(
        f"all {BLOCKS} blocks of {count} sandbox uids from {base} are held by other Wisp "
        f"servers on this host (lock files in {lock_dir})"
    )
