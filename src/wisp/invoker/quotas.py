"""Per-namespace admission: invocations in flight and invocations per minute.

Checked before an invocation starts, so a refused one is not half-run: the caller
gets a 429 with Retry-After and OpenWhisk's error text, and nothing else happens.
Operators override the defaults per namespace (``wisp admin namespace limits``, which
writes the store from its own process); overrides are read from the store by a
background thread every ``REFRESH`` seconds for each namespace invoked in the last
``IDLE`` seconds, so a change applies on every server (replica) within ``BOUND``
seconds. A server that reads
a namespace's limits for ``GET .../limits`` applies what it read at once (``learn``),
so what it reports is what it enforces. Admission never waits for the store: it uses the last limits
read (the defaults until the first read lands), so a store that hangs or is down
does not stall invokes; a failed read is retried after ``RETRY`` seconds.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wisp.config import Settings
from wisp.errors import TooManyRequests

# Seconds an operator's override may take to apply: one primary-key read per namespace
# in use per period, off the event loop.
REFRESH = 2.0
TICK = 1.0  # seconds between the reader's passes over the namespaces in use
BOUND = REFRESH + TICK  # seconds a change may take to apply on a server that uses it
RETRY = 5.0  # seconds before a failed read of the overrides is tried again
IDLE = 30.0  # seconds after its last invoke a namespace's limits are still re-read
THROTTLED_MAX = 1000  # namespaces counted apart; the rest are folded into OTHER
OTHER = "_other"
CONCURRENT_KEY = "concurrentActions"
PER_MINUTE_KEY = "invocationsPerMinute"

Lookup = Callable[[str], dict[str, Any] | None]  # namespace -> its limits overrides

log = logging.getLogger("wisp.quotas")


@dataclass
class _Usage:
    in_flight: int = 0
    minute: int = -1
    started: int = 0
    concurrent: int = 0
    per_minute: int = 0
    checked: float = -math.inf
    used: float = -math.inf  # last admitted or refused


class Quotas:
    def __init__(self, settings: Settings, lookup: Lookup, clock: Callable[[], float] = time.time):
        self.default_concurrent = settings.namespace_concurrent
        self.default_per_minute = settings.namespace_per_minute
        self.lookup = lookup
        self.clock = clock
        self.throttled: dict[str, int] = {}  # refusals per namespace (bounded)
        self._usage: dict[str, _Usage] = {}
        # The reader thread's work: namespaces to read, each queued at most once.
        self._pending: set[str] = set()
        self._queue: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def admit(self, namespace: str) -> None:
        """Count one invocation in, or raise TooManyRequests."""
        usage = self._usage.get(namespace)
        now = self.clock()
        if usage is None:
            usage = self._usage[namespace] = self._new_usage()
        usage.used = now
        if now - usage.checked > REFRESH:
            usage.checked = now
            self._schedule(namespace)
        minute = int(now // 60)
        if minute != usage.minute:
            usage.minute, usage.started = minute, 0
        if usage.in_flight >= usage.concurrent:
            self._throttle(namespace)
            raise TooManyRequests(
                f"Too many concurrent requests in flight (count: {usage.in_flight + 1}, "
                f"allowed: {usage.concurrent}).",
                retry_after=1,
            )
        if usage.started >= usage.per_minute:
            self._throttle(namespace)
            raise TooManyRequests(
                f"Too many requests in the last minute (count: {usage.started + 1}, "
                f"allowed: {usage.per_minute}).",
                retry_after=max(1, math.ceil(60 - now % 60)),
            )
        usage.in_flight += 1
        usage.started += 1

    def enter(self, namespace: str) -> None:
        """Count in one invocation admitted earlier (re-run after a restart): it is
        not refused, but it holds a place like any other while it runs."""
        usage = self._usage.get(namespace)
        if usage is None:
            usage = self._usage[namespace] = self._new_usage()
        usage.in_flight += 1

    def done(self, namespace: str) -> None:
        """One admitted invocation of ``namespace`` finished."""
        usage = self._usage.get(namespace)
        if usage is not None and usage.in_flight > 0:
            usage.in_flight -= 1

    def learn(self, namespace: str, overrides: dict[str, Any] | None) -> None:
        """Apply ``namespace``'s overrides just read from the store (on the event loop:
        the caller did the read elsewhere)."""
        usage = self._usage.get(namespace)
        if usage is None:
            usage = self._usage[namespace] = self._new_usage()
        self._apply(usage, overrides or {})
        usage.checked = self.clock()

    def _new_usage(self) -> _Usage:
        return _Usage(concurrent=self.default_concurrent, per_minute=self.default_per_minute)

    def _apply(self, usage: _Usage, overrides: dict[str, Any]) -> None:
        # Plain attribute writes: admission on the event loop reads whole ints.
        usage.concurrent = _positive(overrides.get(CONCURRENT_KEY), self.default_concurrent)
        usage.per_minute = _positive(overrides.get(PER_MINUTE_KEY), self.default_per_minute)

    def _throttle(self, namespace: str) -> None:
        throttled = self.throttled
        if namespace not in throttled and len(throttled) >= THROTTLED_MAX:
            namespace = OTHER
        throttled[namespace] = throttled.get(namespace, 0) + 1

    def in_flight(self, namespace: str) -> int:
        usage = self._usage.get(namespace)
        return usage.in_flight if usage else 0

    def limits(self, namespace: str) -> tuple[int, int]:
        """(concurrent, per minute) as admission applies them now."""
        usage = self._usage.get(namespace)
        if usage is None:
            return self.default_concurrent, self.default_per_minute
        return usage.concurrent, usage.per_minute

    def _schedule(self, namespace: str) -> None:
        if namespace in self._pending:
            return
        self._pending.add(namespace)
        self._queue.put(namespace)
        with self._lock:
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._read_loop, name="wisp-quotas", daemon=True
                )
                self._reader.start()

    def _read_loop(self) -> None:
        """Read what admission asks for; between, re-read every namespace used in the
        last ``IDLE`` seconds whose limits are older than ``REFRESH``, so that a change
        applies within ``BOUND`` even to a burst that began before it was read."""
        while True:
            try:
                namespace = self._queue.get(timeout=TICK)
            except queue.Empty:
                namespace = None
            if namespace is not None:
                try:
                    self._refresh(namespace)
                finally:
                    self._pending.discard(namespace)
                continue
            now = self.clock()
            active = False
            for name, usage in list(self._usage.items()):
                if now - usage.used > IDLE:
                    continue
                active = True
                if now - usage.checked > REFRESH:
                    usage.checked = now
                    self._refresh(name)
            if not active:
                with self._lock:
                    if self._queue.empty():  # else a namespace came in: carry on
                        self._reader = None
                        return

    def _refresh(self, namespace: str) -> None:
        usage = self._usage.get(namespace)
        if usage is None:
            return
        try:
            overrides = self.lookup(namespace) or {}
        except Exception as exc:  # the store is down: keep the last limits read
            log.warning("could not read the limits of namespace %s: %s", namespace, exc)
            usage.checked = self.clock() - REFRESH + RETRY
            return
        self._apply(usage, overrides)


def _positive(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )
