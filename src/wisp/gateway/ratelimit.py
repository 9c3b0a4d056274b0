"""Per-route rate limits: a token bucket per client key (or IP).

Buckets live in this process: with several api replicas each enforces the limit
on its own share of the traffic. The table of buckets is bounded; past the bound
the least recently seen clients are forgotten (they start again with a full bucket).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

MAX_CLIENTS = 50_000


class TokenBucket:
    """``rate`` tokens a second, up to ``burst``; each request takes one."""

    def __init__(self, requests: int, per: float, burst: int, max_clients: int = MAX_CLIENTS):
        self.rate = requests / per
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def take(self, client: str, now: float | None = None) -> int:
        """0 when the request may go ahead, else the seconds to wait (Retry-After)."""
        return self._use(client, now, 1)

    def peek(self, client: str, now: float | None = None) -> int:
        """What ``take`` would answer, taking nothing."""
        return self._use(client, now, 0)

    def _use(self, client: str, now: float | None, cost: int) -> int:
        now = time.monotonic() if now is None else now
        tokens, at = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        wait = 0
        if tokens >= 1:
            tokens -= cost
        else:
            wait = max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
