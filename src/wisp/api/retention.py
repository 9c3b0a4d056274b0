"""Activation retention: records older than ``settings.retention_hours`` are purged."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

if TYPE_CHECKING:
    from wisp.platform import Platform

IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000

log = logging.getLogger("wisp.api")
PURGE_EVERY = 300.0  # seconds


async def purge_expired(platform: Platform, now_ms: int | None = None) -> int:
    """Delete records past the retention period; return how many went."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    cutoff = now - int(platform.settings.retention_hours * 3_600_000)
    # Idempotency keys past their 24 h no longer count (a claim replaces them); this
    # only keeps the table small.
    await run_in_threadpool(platform.store.purge_idempotency_keys, now - IDEMPOTENCY_WINDOW_MS)
    return await run_in_threadpool(platform.writer.purge, cutoff)


async def retention_loop(platform: Platform, every: float = PURGE_EVERY) -> None:
    """Purge now and then every ``every`` seconds, until cancelled."""
    while True:
        try:
            purged = await purge_expired(platform)
            if purged:
                log.info("purged %d expired activation records", purged)
        except Exception:
            # A failed purge (database briefly away) is retried next round.
            log.exception("purging expired activation records failed")
        await asyncio.sleep(every)
