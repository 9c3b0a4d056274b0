"""Batched activation writer (group commit).

Invocations finish on the event loop thread; writing each record in its own
transaction would cap throughput at the database's commit rate. Instead
``submit`` only queues the record, and one background thread writes whatever
has queued up, up to ``batch`` records per transaction. Records stay readable
through ``get``/``list`` while they wait, so a GET right after an invoke finds
its record.

A failed write is retried with backoff for as long as it takes: the database
being away must not lose records. Only a record the store rejects by itself
(not a ``PlatformError``), alone, several times, is given up on, and then it is
logged in full at ERROR level so it can be recovered by hand.

The backlog is bounded: once ``backlog`` records wait (the store is down or too
slow), ``admit`` refuses new invocations with a 503 until it catches up; records
of invocations already running are still taken. ``stop`` gives up after its
timeout and hands back what it could not write, for the caller to keep on disk.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from wisp.errors import PlatformError, Unavailable
from wisp.models import Activation
from wisp.store.base import Store

log = logging.getLogger(__name__)

DEFAULT_BATCH = 512
DEFAULT_BACKLOG = 50_000  # unwritten records before new invocations are refused
DEFAULT_INTERVAL = 0.02  # seconds a batch waits for more records (a commit costs ~0.1 ms)
RETRY_FIRST = 0.05  # seconds
RETRY_MAX = 5.0
REJECTED_ATTEMPTS = 3  # writes of one record alone before it is dropped


class ActivationWriter:
    """Queues activation records and writes them to ``store`` in batches."""

    def __init__(
        self,
        store: Store,
        batch: int = DEFAULT_BATCH,
        interval: float = DEFAULT_INTERVAL,
        backlog: int = DEFAULT_BACKLOG,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        if backlog < 1:
            raise ValueError(f"backlog must be at least 1, not {backlog}")
        self.store = store
        self.batch = batch
        self.interval = interval
        self.backlog = backlog
        self.written = 0  # records stored
        self.batches = 0  # transactions committed
        self.failures = 0  # write attempts that raised
        self.dropped = 0  # records given up on (logged in full)
        self.refused = 0  # invocations refused while the backlog was full
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the thread waits for records
        self._progress = threading.Condition(self._lock)  # flush() waits for the thread
        self._queue: deque[Activation] = deque()  # submitted, not yet taken by the thread
        self._unwritten: dict[str, Activation] = {}  # queued or being written
        self._submitted = 0  # records ever submitted
        self._done = 0  # of those, written or dropped; always a prefix, in submit order
        self._released = 0  # of those, handed back unwritten by stop()
        self._hurry_until = 0  # flush() is waiting for records up to here: don't linger
        self._stopping = False
        self._abandon = threading.Event()  # stop() timed out: end retrying, keep the records
        self._delay = 0.0  # the current retry backoff; 0 while writes succeed
        self._thread: threading.Thread | None = None
        self._inline = threading.Lock()  # writing from the caller when there is no thread
        # Told (records, seconds) after each commit, from the writing thread (metrics).
        self.on_batch: Callable[[int, float], None] | None = None

    @property
    def pending(self) -> int:
        """Records submitted but not yet written."""
        return len(self._unwritten)

    @property
    def saturated(self) -> bool:
        """The backlog is full: new invocations must wait for the store."""
        return len(self._unwritten) >= self.backlog

    def admit(self) -> None:
        """Raise ``Unavailable`` (503) while the backlog is full; checked before an
        invocation is accepted, so a refused one has taken nothing."""
        if len(self._unwritten) >= self.backlog:
            self.refused += 1
            raise Unavailable(
                f"Activation records cannot be stored fast enough ({self.pending} waiting, "
                f"limit {self.backlog}); the store may be unavailable. Try again later.",
                retry_after=max(1, math.ceil(self._delay)),
            )

    def mark(self) -> int:
        """A point in the submit order: ``committed(mark)`` once everything
        submitted up to now is written (or, rejected by the store, logged in full)."""
        return self._submitted

    def committed(self, mark: int) -> bool:
        return self._done >= mark

    def unwritten(self) -> builtins.list[Activation]:
        """The records not written yet, in submit order."""
        with self._lock:
            return builtins.list(self._unwritten.values())

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._abandon.clear()
            self._thread = threading.Thread(
                target=self._run, name="wisp-activation-writer", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = None) -> builtins.list[Activation]:
        """Write everything submitted, then end the thread.

        After ``timeout`` seconds (the store is down) stop retrying and return the
        records not written: they are the caller's to keep now (the accept journal
        puts them on disk, written at the next start). Stopping again returns []."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._stopping = True
            self._work.notify()
            thread, self._thread = self._thread, None
        if thread is None:
            self._write_inline(deadline)
        else:
            thread.join(timeout)
            if thread.is_alive():
                # Retrying (or stuck in the driver): let go of what it holds.
                self._abandon.set()
                thread.join(min(1.0, timeout or 1.0))
        with self._lock:
            left = builtins.list(self._unwritten.values())
            self._queue.clear()
            self._unwritten.clear()
            self._released += len(left)
            self._progress.notify_all()
        if left:
            log.warning(
                "activation writer: the store took no records for %.1fs; stopping with %d "
                "records not written",
                timeout or 0.0,
                len(left),
            )
        return left

    # -- the hot path ------------------------------------------------------
    def submit(self, record: Activation) -> None:
        """Queue ``record`` for writing; never blocks on the database."""
        with self._lock:
            self._queue.append(record)
            self._unwritten[record.activation_id] = record
            self._submitted += 1
            # Wake the thread only when it may be asleep on an empty queue, or
            # lingering for a batch that is now full.
            queued = len(self._queue)
            if queued == 1 or queued == self.batch:
                self._work.notify()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record submitted before this call is written."""
        with self._lock:
            target = self._submitted
            running = self._thread is not None and self._thread.is_alive()
            if running and self._done < target:
                self._hurry_until = max(self._hurry_until, target)
                self._work.notify()
        deadline = None if timeout is None else time.monotonic() + timeout
        if not running:
            self._write_inline(deadline)
        with self._lock:
            while self._done + self._released < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    left = target - self._done - self._released
                    raise PlatformError(f"{left} activation records not written after {timeout}s")
                self._progress.wait(remaining)

    # -- reads that see unwritten records ----------------------------------
    def get(self, namespace: str, activation_id: str) -> Activation | None:
        """The record, whether written yet or not. Unwritten records are shared
        with the writer thread: callers must not change them."""
        # Checked before the store: a record leaves ``_unwritten`` only once committed.
        record = self._unwritten.get(activation_id)
        if record is not None:
            return record if record.namespace == namespace else None
        return self.store.get_activation(namespace, activation_id)

    def purge(self, older_than: int) -> int:
        return self.store.purge_activations(older_than)

    def list(
        self,
        namespace: str,
        name: str | None = None,
        since: int | None = None,
        upto: int | None = None,
        limit: int = 30,
        skip: int = 0,
    ) -> builtins.list[Activation]:
        """``Store.list_activations``, including records not written yet."""
        # Snapshot the unwritten records *before* asking the store: one written
        # in between is then in the store's answer, or in both (deduplicated).
        with self._lock:
            unwritten = builtins.list(self._unwritten.values())
        merged = {
            r.activation_id: r
            for r in self.store.list_activations(namespace, name, since, upto, skip + limit, 0)
        }
        for r in unwritten:
            if _matches(r, namespace, name, since, upto):
                merged[r.activation_id] = r
        newest_first = sorted(merged.values(), key=lambda r: (r.start, r.activation_id))[::-1]
        return newest_first[skip : skip + limit]

    # -- the writer thread -------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._work.wait()
                if not self._queue:
                    return  # stopping, and everything is written
                if (
                    len(self._queue) < self.batch
                    and not self._stopping
                    and self._hurry_until <= self._done
                ):
                    # Group commit: let invocations finishing now join this batch.
                    self._work.wait(self.interval)
                taken = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
            try:
                done = self._write(taken, None)
            except BaseException:
                # Not expected (_write handles the store's errors), but the records
                # must survive it: put them back first in line.
                log.exception("activation writer: unexpected error; will retry")
                done = 0
                time.sleep(RETRY_FIRST)
            self._finished(taken, done)
            if self._abandon.is_set():
                return

    def _write_inline(self, deadline: float | None) -> None:
        """Write the queue from the calling thread (no writer thread running),
        until it is empty or ``deadline`` passes."""
        with self._inline:
            while True:
                with self._lock:
                    if not self._queue:
                        return
                    taken = [
                        self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))
                    ]
                done = self._write(taken, deadline)
                self._finished(taken, done)
                if done < len(taken):
                    return

    def _finished(self, taken: builtins.list[Activation], done: int) -> None:
        """The first ``done`` of ``taken`` are written (or dropped); the rest go
        back first in line."""
        with self._lock:
            for record in taken[:done]:
                if self._unwritten.get(record.activation_id) is record:
                    del self._unwritten[record.activation_id]
            self._queue.extendleft(reversed(taken[done:]))
            self._done += done
            self._progress.notify_all()

    def _write(self, records: builtins.list[Activation], deadline: float | None) -> int:
        """Store ``records``, retrying until it works (or a lone record is rejected),
        until ``deadline`` or until ``stop`` gives up. Returns how many were written
        or dropped: always a prefix of ``records``."""
        delay = RETRY_FIRST
        attempts = 0
        while True:
            began = time.perf_counter()
            try:
                self.store.insert_activations(records)
            except PlatformError as e:
                # The database is away or failing: wait for it, however long.
                attempts += 1
                self.failures += 1
                log.error(
                    "could not write %d activation records (attempt %d), retrying in %.2fs: %s",
                    len(records),
                    attempts,
                    delay,
                    e,
                )
            except Exception:
                attempts += 1
                self.failures += 1
                if len(records) > 1:
                    # Probably one bad record: halve the batch until it is found,
                    # so the others are written.
                    log.exception("store rejected %d activation records; splitting", len(records))
                    half = len(records) // 2
                    done = self._write(records[:half], deadline)
                    if done < half:
                        return done
                    return half + self._write(records[half:], deadline)
                if attempts >= REJECTED_ATTEMPTS:
                    self.dropped += 1
                    log.exception(
                        "DROPPING activation record after %d rejected writes: %s",
                        attempts,
                        _describe(records[0]),
                    )
                    return 1
                log.exception("store rejected activation record %s", records[0].activation_id)
            else:
                self.written += len(records)
                self.batches += 1
                self._delay = 0.0
                if self.on_batch is not None:
                    self.on_batch(len(records), time.perf_counter() - began)
                return len(records)
            self._delay = delay
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            # Sleeps the backoff, or less when stop() gives up meanwhile.
            if self._abandon.wait(delay) or (deadline is not None and time.monotonic() >= deadline):
                return 0
            delay = min(delay * 2, RETRY_MAX)


def _matches(
    record: Activation, namespace: str, name: str | None, since: int | None, upto: int | None
) -> bool:
    if record.namespace != namespace:
        return False
    if name is not None and not (
        record.name.startswith(name) if name.endswith("/") else record.name == name
    ):
        return False
    if since is not None and record.start < since:
        return False
    return upto is None or record.start <= upto


def _describe(record: Activation) -> str:
    try:
        return json.dumps(record.to_json(), default=repr)
    except Exception:
        return repr(record)
