"""Per-namespace admission: invocations in flight and invocations per minute.

Checked before an invocation starts, so a refused one is not half-run: the caller
gets a 429 with Retry-After and OpenWhisk's error text, and nothing else happens.
Operators override the defaults per namespace (``wisp admin namespace limits``);
overrides are read from the store and cached for ``REFRESH`` seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wisp.config import Settings
from wisp.errors import TooManyRequests

REFRESH = 30.0  # seconds an operator's override may take to apply
THROTTLED_MAX = 1000  # namespaces counted apart; the rest are folded into OTHER
OTHER = "_other"
CONCURRENT_KEY = "concurrentActions"
PER_MINUTE_KEY = "invocationsPerMinute"

Lookup = Callable[[str], dict[str, Any] | None]  # namespace -> its limits overrides


@dataclass
class _Usage:
    in_flight: int = 0
    minute: int = -1
    started: int = 0
    concurrent: int = 0
    per_minute: int = 0
    checked: float = -math.inf


class Quotas:
    def __init__(self, settings: Settings, lookup: Lookup, clock: Callable[[], float] = time.time):
        self.default_concurrent = settings.namespace_concurrent
        self.default_per_minute = settings.namespace_per_minute
        self.lookup = lookup
        self.clock = clock
        self.throttled: dict[str, int] = {}  # refusals per namespace (bounded)
        self._usage: dict[str, _Usage] = {}

    def admit(self, namespace: str) -> None:
        """Count one invocation in, or raise TooManyRequests."""
        usage = self._usage.get(namespace)
        now = self.clock()
        if usage is None:
            usage = self._usage[namespace] = _Usage()
        if now - usage.checked > REFRESH:
            self._refresh(namespace, usage, now)
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

    def done(self, namespace: str) -> None:
        """One admitted invocation of ``namespace`` finished."""
        usage = self._usage.get(namespace)
        if usage is not None and usage.in_flight > 0:
            usage.in_flight -= 1

    def _throttle(self, namespace: str) -> None:
        throttled = self.throttled
        if namespace not in throttled and len(throttled) >= THROTTLED_MAX:
            namespace = OTHER
        throttled[namespace] = throttled.get(namespace, 0) + 1

    def in_flight(self, namespace: str) -> int:
        usage = self._usage.get(namespace)
        return usage.in_flight if usage else 0

    def _refresh(self, namespace: str, usage: _Usage, now: float) -> None:
        overrides = self.lookup(namespace) or {}
        usage.concurrent = _positive(overrides.get(CONCURRENT_KEY), self.default_concurrent)
        usage.per_minute = _positive(overrides.get(PER_MINUTE_KEY), self.default_per_minute)
        usage.checked = now


def _positive(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default
    )
