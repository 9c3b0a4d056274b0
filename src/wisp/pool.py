"""Warm instances per function version, within a memory budget.

An instance runs one activation at a time. ``acquire`` hands out an idle instance
of the same version (warm) or reserves memory for a new one (cold); when the
budget is spent it evicts idle instances least-recently-used first, and when that
is not enough the caller waits. Waiters queue per tenant (the first element of a
tuple key, the namespace) in arrival order, and tenants are served round-robin:
one namespace flooding the pool cannot starve another, and within a namespace
tail latency stays bounded (strict FIFO, not a free-for-all). Memory is shared
fairly too: a tenant that would hold more than its share of the budget (the budget
over the tenants holding or waiting for instances) may not evict the idle instances
of a tenant within its share, so a flood cannot turn a quiet tenant's every call
into a cold start; it waits for its own instances instead. A version may be capped
at ``max_instances``; past it, callers wait for one of its instances. Idle instances
past the keep-alive are stopped: scale to zero.

``lease()`` is the way to hold an instance: an ``async with`` that gives it back on
every path (released when healthy, discarded when spoiled or when the block raised
or was cancelled), so no exception can leak the instance or its memory. A paused
pool (a stop is draining) grants nothing to waiters; a stopped one fails them with
``PoolClosed``, which tells their callers that they never started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from types import TracebackType

from wisp.sandbox.base import Instance, Sandbox

log = logging.getLogger("wisp.pool")


class PoolClosed(Exception):
    """The pool stopped before it could grant this waiter an instance."""


@dataclass(eq=False)
class Lease:
    """An instance checked out of the pool. ``cold``: it still needs ``init``.
    ``spoiled``: it must not be reused (set by the holder; the pool discards it)."""

    key: Hashable
    kind: str
    memory_mb: int
    instance: Instance | None = None
    network: str = "egress"
    cold: bool = False
    spoiled: bool = False
    last_used: float = field(default_factory=time.monotonic)


class Holding:
    """``async with pool.lease(...) as lease``: a class, not a generator-based context
    manager, as it is on every invocation's path."""

    __slots__ = ("key", "kind", "lease", "max_instances", "memory_mb", "network", "pool")

    def __init__(
        self,
        pool: Pool,
        key: Hashable,
        kind: str,
        memory_mb: int,
        max_instances: int | None,
        network: str,
    ) -> None:
        self.pool = pool
        self.key = key
        self.kind = kind
        self.memory_mb = memory_mb
        self.max_instances = max_instances
        self.network = network
        self.lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        self.lease = await self.pool.acquire(
            self.key, self.kind, self.memory_mb, self.max_instances, self.network
        )
        return self.lease

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lease = self.lease
        assert lease is not None
        if kind is None and not lease.spoiled:
            self.pool.release(lease)
        else:
            await self.pool.discard(lease)


@dataclass(eq=False)
class _Waiter:
    key: Hashable
    memory_mb: int
    max_instances: int | None
    future: asyncio.Future[Lease | None]  # a warm lease, or None: capacity reserved


def tenant(key: Hashable) -> Hashable:
    return key[0] if isinstance(key, tuple) and key else key


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
        self._live: dict[Hashable, int] = {}  # instances (idle, busy or starting) per key
        self._held_mb: dict[Hashable, int] = {}  # memory reserved per tenant
        self._queues: OrderedDict[Hashable, deque[_Waiter]] = OrderedDict()  # per tenant
        self._reaper: asyncio.Task[None] | None = None
        self.paused = False

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_forever())

    def pause(self) -> None:
        """Grant nothing more: waiters stay queued (a draining stop keeps them for
        the next start) while running leases finish and come back."""
        self.paused = True

    async def stop(self) -> None:
        self.paused = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        for lease in list(self._lru):
            await self._evict(lease)
        for queue in self._queues.values():
            for waiter in queue:
                if not waiter.future.done():
                    waiter.future.set_exception(PoolClosed())
        self._queues.clear()

    @property
    def idle(self) -> int:
        return len(self._lru)

    @property
    def queued(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def instances(self, key: Hashable) -> int:
        return self._live.get(key, 0)

    def counts(self) -> dict[Hashable, tuple[int, int]]:
        """(instances, of which idle) per key: read by /metrics, not on the hot path."""
        return {key: (live, len(self._idle.get(key, ()))) for key, live in self._live.items()}

    def lease(
        self,
        key: Hashable,
        kind: str,
        memory_mb: int,
        max_instances: int | None = None,
        network: str = "egress",
    ) -> Holding:
        """Hold an instance for an ``async with`` block: released after it unless
        ``spoiled``; discarded when the block raises or is cancelled (its state is
        unknown)."""
        return Holding(self, key, kind, memory_mb, max_instances, network)

    async def acquire(
        self,
        key: Hashable,
        kind: str,
        memory_mb: int,
        max_instances: int | None = None,
        network: str = "egress",
    ) -> Lease:
        """A warm lease when an idle instance of ``key`` exists, else a cold one."""
        if self.paused:
            raise PoolClosed()
        lease = self._take_idle(key)
        if lease is not None:
            return lease
        if (
            tenant(key) not in self._queues
            and self._below_cap(key, max_instances)
            and self._evict_for(key, memory_mb)
        ):
            self._reserve(key, memory_mb)
        else:
            waiter = _Waiter(
                key, memory_mb, max_instances, asyncio.get_running_loop().create_future()
            )
            self._queues.setdefault(tenant(key), deque()).append(waiter)
            try:
                granted = await waiter.future
            except asyncio.CancelledError:
                self._drop_waiter(waiter)
                self._give_back_grant(waiter)
                raise
            if granted is not None:
                return granted
        return await self._cold(key, kind, memory_mb, network)

    def _give_back_grant(self, waiter: _Waiter) -> None:
        """The waiter was cancelled after it was served but before it woke: what it
        was granted (a warm lease, or reserved room) goes back."""
        future = waiter.future
        if not future.done() or future.cancelled() or future.exception() is not None:
            return
        granted = future.result()
        if granted is not None:
            self.release(granted)
        else:
            self._unreserve(waiter.key, waiter.memory_mb)
            self._wake()

    def _below_cap(self, key: Hashable, max_instances: int | None) -> bool:
        return max_instances is None or self._live.get(key, 0) < max_instances

    def _reserve(self, key: Hashable, memory_mb: int) -> None:
        self.used_mb += memory_mb
        self._live[key] = self._live.get(key, 0) + 1
        owner = tenant(key)
        self._held_mb[owner] = self._held_mb.get(owner, 0) + memory_mb

    def _unreserve(self, key: Hashable, memory_mb: int) -> None:
        self.used_mb -= memory_mb
        left = self._live.get(key, 0) - 1
        if left > 0:
            self._live[key] = left
        else:
            self._live.pop(key, None)
        owner = tenant(key)
        held = self._held_mb.get(owner, 0) - memory_mb
        if held > 0:
            self._held_mb[owner] = held
        else:
            self._held_mb.pop(owner, None)

    def _drop_waiter(self, waiter: _Waiter) -> None:
        queue = self._queues.get(tenant(waiter.key))
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                del self._queues[tenant(waiter.key)]

    async def _cold(self, key: Hashable, kind: str, memory_mb: int, network: str) -> Lease:
        """Capacity is reserved: take a fresh instance from the sandbox."""
        lease = Lease(key, kind, memory_mb, cold=True, network=network)
        try:
            lease.instance = await self.sandbox.spawn(kind, network)
        except BaseException:
            self._unreserve(key, memory_mb)
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
            self._unreserve(lease.key, lease.memory_mb)
        return None

    def release(self, lease: Lease) -> None:
        """Give a healthy instance back for reuse."""
        self.busy -= 1
        if lease.instance is None or not lease.instance.alive:
            self._unreserve(lease.key, lease.memory_mb)
        else:
            lease.last_used = time.monotonic()
            self._idle.setdefault(lease.key, []).append(lease)
            self._lru[lease] = None
        self._wake()

    async def discard(self, lease: Lease) -> None:
        """Stop an instance that must not be reused (crashed, timed out, failed init)."""
        self.busy -= 1
        self._unreserve(lease.key, lease.memory_mb)
        self._wake()
        if lease.instance is not None:
            # Shielded: a cancelled holder must still not leave the process running.
            await asyncio.shield(lease.instance.kill())

    def _wake(self) -> None:
        """Serve waiters: tenants round-robin, each tenant's waiters in arrival order.

        A waiter whose version is at its instance cap is passed over (it can only be
        served by one of its own instances coming free), so it does not block others.
        """
        progress = not self.paused
        while self._queues and progress:
            progress = False
            for name in list(self._queues):
                queue = self._queues.get(name)
                if not queue:
                    self._queues.pop(name, None)
                    continue
                if self._serve_one(queue):
                    progress = True
                    self._queues.move_to_end(name)  # next turn goes to the next tenant
                if not queue:
                    self._queues.pop(name, None)

    def _serve_one(self, queue: deque[_Waiter]) -> bool:
        # By index, not over a copy: the one served is nearly always at the front, and
        # a copy of a long queue (a burst, a restart's backlog) per release is O(n).
        i = 0
        while i < len(queue):
            waiter = queue[i]
            if waiter.future.done():
                del queue[i]
                continue
            lease = self._take_idle(waiter.key)
            if lease is not None:
                del queue[i]
                waiter.future.set_result(lease)
                return True
            if not self._below_cap(waiter.key, waiter.max_instances):
                i += 1
                continue
            if not self._evict_for(waiter.key, waiter.memory_mb):
                return False  # no room: later waiters of this tenant wait their turn
            del queue[i]
            self._reserve(waiter.key, waiter.memory_mb)
            waiter.future.set_result(None)
            return True
        return False

    def _evict_for(self, key: Hashable, memory_mb: int) -> bool:
        """Make room for ``memory_mb`` for ``key`` by evicting idle instances, least
        recently used first, among those its tenant may evict; False (and nothing
        evicted) when that is not enough."""
        short = self.used_mb + memory_mb - self.budget_mb
        if short <= 0:
            return True
        mine = tenant(key)
        share = self.budget_mb / len(self._held_mb.keys() | self._queues.keys() | {mine})
        past_share = self._held_mb.get(mine, 0) + memory_mb > share
        victims: list[Lease] = []
        freed: dict[Hashable, int] = {}
        for lease in self._lru:  # oldest first
            owner = tenant(lease.key)
            if owner != mine and past_share:
                # Only from a tenant that holds more than its share, and only down to it.
                left = self._held_mb.get(owner, 0) - freed.get(owner, 0)
                if left <= share:
                    continue
            victims.append(lease)
            freed[owner] = freed.get(owner, 0) + lease.memory_mb
            short -= lease.memory_mb
            if short <= 0:
                break
        if short > 0:
            return False
        for lease in victims:
            self._forget(lease)
            if lease.instance is not None:
                asyncio.get_running_loop().create_task(lease.instance.kill())
        return True

    def _forget(self, lease: Lease) -> None:
        del self._lru[lease]
        stack = self._idle.get(lease.key)
        if stack is not None:
            stack.remove(lease)
            if not stack:
                del self._idle[lease.key]
        self._unreserve(lease.key, lease.memory_mb)
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
