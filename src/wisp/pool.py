"""Warm instances per function version, within a memory budget.

An instance runs one activation at a time. ``acquire`` hands out an idle instance
of the same version (warm) or reserves memory for a new one (cold); when the
budget is spent it evicts idle instances least-recently-used first, and when that
is not enough the caller waits in one FIFO queue, served strictly in order so
that tail latency stays bounded under load. Idle instances past the keep-alive
are stopped: scale to zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field

from wisp.sandbox.base import Instance, Sandbox

log = logging.getLogger("wisp.pool")


@dataclass(eq=False)
class Lease:
    """An instance checked out of the pool. ``cold``: it still needs ``init``."""

    key: Hashable
    kind: str
    memory_mb: int
    instance: Instance | None = None
    cold: bool = False
    last_used: float = field(default_factory=time.monotonic)


@dataclass(eq=False)
class _Waiter:
    key: Hashable
    memory_mb: int
    future: asyncio.Future[Lease | None]  # a warm lease, or None: capacity reserved


class Pool:
    def __init__(self, sandbox: Sandbox, budget_mb: int, keepalive: float) -> None:
        self.sandbox = sandbox
        self.budget_mb = budget_mb
        self.keepalive = keepalive
        self.used_mb = 0
        self.busy = 0
        self.evictions = 0
        self._idle: dict[Hashable, list[Lease]] = {}
        self._lru: OrderedDict[Lease, None] = OrderedDict()  # idle leases, oldest first
        self._waiters: deque[_Waiter] = deque()
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for lease in list(self._lru):
            await self._evict(lease)
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.cancel()

    @property
    def idle(self) -> int:
        return len(self._lru)

    @property
    def queued(self) -> int:
        return len(self._waiters)

    async def acquire(self, key: Hashable, kind: str, memory_mb: int) -> Lease:
        """A warm lease when an idle instance of ``key`` exists, else a cold one."""
        lease = self._take_idle(key)
        if lease is not None:
            return lease
        if not self._waiters and self._evict_for(memory_mb):
            self.used_mb += memory_mb
        else:
            waiter = _Waiter(key, memory_mb, asyncio.get_running_loop().create_future())
            self._waiters.append(waiter)
            try:
                granted = await waiter.future
            except asyncio.CancelledError:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                raise
            if granted is not None:
                return granted
        return await self._cold(key, kind, memory_mb)

    async def _cold(self, key: Hashable, kind: str, memory_mb: int) -> Lease:
        """Capacity is reserved: take a fresh instance from the sandbox."""
        lease = Lease(key, kind, memory_mb, cold=True)
        try:
            lease.instance = await self.sandbox.spawn(kind)
        except BaseException:
            self.used_mb -= memory_mb
            self._wake()
            raise
        self.busy += 1
        return lease

    def _take_idle(self, key: Hashable) -> Lease | None:
        stack = self._idle.get(key)
        while stack:
            lease = stack.pop()  # most recently used: its caches are warmest
            del self._lru[lease]
            if lease.instance is not None and lease.instance.alive:
                lease.cold = False
                self.busy += 1
                return lease
            self.used_mb -= lease.memory_mb
        return None

    def release(self, lease: Lease) -> None:
        """Give a healthy instance back for reuse."""
        self.busy -= 1
        if lease.instance is None or not lease.instance.alive:
            self.used_mb -= lease.memory_mb
        else:
            lease.last_used = time.monotonic()
            self._idle.setdefault(lease.key, []).append(lease)
            self._lru[lease] = None
        self._wake()

    async def discard(self, lease: Lease) -> None:
        """Stop an instance that must not be reused (crashed, timed out, failed init)."""
        self.busy -= 1
        self.used_mb -= lease.memory_mb
        if lease.instance is not None:
            await lease.instance.kill()
        self._wake()

    def _wake(self) -> None:
        """Serve waiters strictly in arrival order."""
        while self._waiters:
            head = self._waiters[0]
            if head.future.done():
                self._waiters.popleft()
                continue
            lease = self._take_idle(head.key)
            if lease is not None:
                self._waiters.popleft()
                head.future.set_result(lease)
                continue
            if not self._evict_for(head.memory_mb):
                return
            self._waiters.popleft()
            self.used_mb += head.memory_mb
            head.future.set_result(None)

    def _evict_for(self, memory_mb: int) -> bool:
        while self.used_mb + memory_mb > self.budget_mb and self._lru:
            oldest = next(iter(self._lru))
            self._forget(oldest)
            if oldest.instance is not None:
                asyncio.get_running_loop().create_task(oldest.instance.kill())
        return self.used_mb + memory_mb <= self.budget_mb

    def _forget(self, lease: Lease) -> None:
        del self._lru[lease]
        stack = self._idle.get(lease.key)
        if stack is not None:
            stack.remove(lease)
            if not stack:
                del self._idle[lease.key]
        self.used_mb -= lease.memory_mb
        self.evictions += 1

    async def _evict(self, lease: Lease) -> None:
        self._forget(lease)
        if lease.instance is not None:
            await lease.instance.kill()

    async def reap(self) -> int:
        """Stop instances idle for longer than the keep-alive; return how many."""
        cutoff = time.monotonic() - self.keepalive
        old = [lease for lease in self._lru if lease.last_used < cutoff]
        for lease in old:
            await self._evict(lease)
        if old:
            self._wake()
        return len(old)

    async def _reap_forever(self) -> None:
        interval = max(0.05, min(self.keepalive / 4, 5.0))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except Exception:
                log.exception("reaping idle instances failed")
