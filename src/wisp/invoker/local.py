"""The invoker for sandboxes on this host: admission, then the executor, per request.

It owns the tasks that carry requests, the stop order (drain → wait for running
→ keep what did not start → stop instances → flush), and the start-up recovery of
what the previous run's journal left.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from wisp.config import Settings
from wisp.errors import Unavailable
from wisp.ids import activation_id as new_activation_id
from wisp.invoker import records, retrying
from wisp.invoker.admission import Admission
from wisp.invoker.base import Invocation, Invoker, PoolStats, Target
from wisp.invoker.deadletters import DeadLetters, Deliver
from wisp.invoker.executor import Executor, now_ms
from wisp.invoker.journal import AcceptJournal, Leftovers
from wisp.invoker.quotas import Quotas
from wisp.invoker.request import ActionRef, InvocationRequest, entry_ref
from wisp.invoker.states import ActivationState
from wisp.observability.logs import REQUEST_ID
from wisp.observability.tracing import Trace, incoming, new_trace
from wisp.pool import Pool
from wisp.sandbox.base import Sandbox
from wisp.sandbox.bundles import BundleCache
from wisp.store.writer import ActivationWriter

log = logging.getLogger("wisp.invoker")

STOP_GRACE = 5.0  # seconds cancelled invocations get to record themselves at shutdown
GONE = "The platform restarted before this activation ran, and its function version is gone."

Resolve = Callable[[ActionRef], Target | None]  # an action version → its target (store I/O)


class LocalInvoker(Invoker):
    def __init__(
        self,
        settings: Settings,
        sandbox: Sandbox,
        pool: Pool,
        writer: ActivationWriter,
        bundles: BundleCache,
        quotas: Quotas | None = None,
        journal: AcceptJournal | None = None,
        resolve: Resolve | None = None,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.sandbox = sandbox
        self.pool = pool
        self.writer = writer
        self.bundles = bundles
        self.journal = journal
        self.resolve = resolve
        self.admission = Admission(quotas, journal, writer)
        self.dead_letters = dead_letters
        self.executor = Executor(
            settings, pool, bundles, writer, self.admission, self.observers, dead_letters
        )
        self.tracing = settings.tracing == "on"
        self._tasks: dict[asyncio.Task[None], InvocationRequest] = {}
        self._background: set[asyncio.Task[None]] = set()  # dead letters sent at start-up
        self._drain_deadline: float | None = None

    @property
    def quotas(self) -> Quotas | None:
        return self.admission.quotas

    @property
    def isolation(self) -> dict[str, str]:
        return {
            "level": self.sandbox.level,
            "layers": self.sandbox.isolation,
            "egress": self.sandbox.egress_mode,
        }

    def describe(self) -> dict[str, str]:
        return {**super().describe(), "egress": self.sandbox.egress_note()}

    def prepare(self) -> None:
        self.sandbox.prepare_isolation()

    def deliver_dead_letters(self, deliver: Deliver) -> None:
        if self.dead_letters is not None:
            self.dead_letters.deliver = deliver

    def pool_stats(self) -> PoolStats:
        pool = self.pool
        return PoolStats(
            pool.used_mb, pool.budget_mb, pool.busy, pool.idle, pool.queued, pool.evictions
        )

    def instance_counts(self) -> Mapping[Hashable, tuple[int, int]]:
        return self.pool.counts()

    def stem_cells(self) -> Mapping[tuple[str, str], int]:
        return self.sandbox.ready()

    def learn_limits(self, namespace: str, overrides: dict[str, Any] | None) -> None:
        quotas = self.admission.quotas
        if quotas is not None:
            quotas.learn(namespace, overrides)

    def throttled(self) -> Mapping[str, int]:
        quotas = self.admission.quotas
        return dict(quotas.throttled) if quotas is not None else {}

    async def start(self) -> None:
        await asyncio.to_thread(self.bundles.prepare)
        left: Leftovers | None = None
        if self.journal is not None:
            await asyncio.to_thread(self.journal.write_kept)
            left = await asyncio.to_thread(self.journal.leftovers)
            self.journal.open()
        await self.sandbox.start()
        await self.pool.start()
        if left is not None and left.paths:
            await self._recover(left)

    def drain(self) -> None:
        if not self.admission.accepting:
            return
        self.admission.accepting = False
        self._drain_deadline = asyncio.get_running_loop().time() + self.settings.drain_seconds
        self.pool.pause()
        # Blocking callers waiting for an instance answer 202 now; the work is journaled.
        for request in self._tasks.values():
            handoff = request.handoff
            if request.state is ActivationState.ACCEPTED and handoff is not None:
                self.admission.detach(request)
                if not handoff.done():
                    handoff.set_result(None)

    async def stop(self) -> None:
        self.drain()
        loop = asyncio.get_running_loop()
        # Not started (or waiting for a retry's delay): stays in the journal for the
        # next start.
        for task, request in list(self._tasks.items()):
            if request.state in (ActivationState.ACCEPTED, ActivationState.RETRIED):
                task.cancel()
        running = [t for t, r in self._tasks.items() if r.state is ActivationState.STARTED]
        if running:
            assert self._drain_deadline is not None
            left = max(0.0, self._drain_deadline - loop.time())
            log.info("waiting up to %.0fs for %d running activations", left, len(running))
            await asyncio.wait(running, timeout=left)
        for task in list(self._tasks):  # ran out of time: recorded as interrupted
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
        await self.pool.stop()
        await self.sandbox.stop()
        if self.journal is not None:
            # Bounded: with the store down, what is unwritten stays on disk.
            await asyncio.to_thread(self.journal.close, self.settings.writer_stop_timeout)

    async def warm(self, target: Target) -> bool:
        return await self.executor.warm(target)

    def submit(
        self,
        target: Target,
        params: dict[str, Any],
        *,
        subject: str,
        cause: str | None = None,
        trace: Trace | None = None,
        blocking: bool = False,
        activation_id: str | None = None,
    ) -> Invocation:
        if trace is None:
            trace = incoming()  # the HTTP request's traceparent, when it had one
            if trace is None and self.tracing:
                trace = new_trace()
        loop = asyncio.get_running_loop()
        request = InvocationRequest(
            activation_id=activation_id or new_activation_id(),
            target=target,
            args={**target.parameters, **params} if target.parameters else params,
            subject=subject,
            start=now_ms(),
            cause=cause,
            request_id=REQUEST_ID.get(),
            trace=trace,
            blocking=blocking,
            done=loop.create_future(),
        )
        self.admission.admit(request)  # raises before anything starts
        on_detach = None
        if blocking and self.journal is not None:
            # Journaled only if its caller stops waiting: one file write less per call
            # answered within the wait.
            on_detach = functools.partial(self.admission.detach, request)
            request.handoff = loop.create_future()
        self._spawn(request)
        assert request.done is not None
        return Invocation(request.activation_id, request.done, on_detach, request.handoff)

    def _spawn(self, request: InvocationRequest) -> None:
        task = asyncio.create_task(self.executor.run(request))
        self._tasks[task] = request
        task.add_done_callback(self._tasks.pop)

    async def _recover(self, left: Leftovers) -> None:
        """Run what the previous run accepted but never started; record what it had
        started as interrupted (or retry it, when its function's policy says so);
        then drop its journal files."""
        assert self.journal is not None
        now = now_ms()
        targets: dict[ActionRef, Target | None] = {}

        async def target_of(entry: dict[str, Any]) -> tuple[ActionRef | None, Target | None]:
            ref = entry_ref(entry)
            if ref is None or self.resolve is None:
                return ref, None
            if ref not in targets:
                targets[ref] = await asyncio.to_thread(self.resolve, ref)
            return ref, targets[ref]

        interrupted = 0
        for entry in left.started:
            _, target = await target_of(entry)
            if target is None or not self._retry_interrupted(entry, target, now):
                self.writer.submit(records.lost(entry, records.INTERRUPTED, now))
                interrupted += 1
        rerun = 0
        loop = asyncio.get_running_loop()
        for entry in left.unstarted:
            ref, target = await target_of(entry)
            if target is None:
                error = GONE if ref is not None else records.LOST
                self.writer.submit(records.lost(entry, error, now))
                continue
            request = InvocationRequest.from_entry(entry, target)
            request.done = loop.create_future()
            waiting = retrying.due_in(request, now) > 0  # a retry takes its quota when due
            if self.admission.quotas is not None and not waiting:
                self.admission.quotas.enter(request.action.namespace)
            try:
                self.journal.accepted(request)
            except Unavailable as exc:
                log.error("journal write failed for %s: %s", request.activation_id, exc)
            self._spawn(request)
            rerun += 1
        await asyncio.to_thread(self.writer.flush)
        self.journal.forget(left.paths)
        if interrupted:
            log.warning(
                "recorded %d activations interrupted by the last stop as failed", interrupted
            )
        if rerun:
            log.warning("running %d activations accepted before the last stop", rerun)

    def _retry_interrupted(self, entry: dict[str, Any], target: Target, now: int) -> bool:
        """An attempt the last stop interrupted, as its function's retry policy sees a
        platform failure: True when it was scheduled again (or buried as dead)."""
        assert self.journal is not None
        request = InvocationRequest.from_entry(entry, target)
        record = records.interrupted(request, now)
        verdict = retrying.decide(request, record, now)
        if verdict.verb == "finish":
            return False
        if verdict.verb == "dead":
            letter = retrying.bury(request, record, verdict.reason, now)
            retrying.finish(request, record)
            records.annotate(record, request)
            self.writer.submit(record)
            if self.dead_letters is not None:
                destination = target.invoke_config.on_failure
                task = asyncio.create_task(self.dead_letters.add(letter, destination))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return True
        retrying.schedule(request, record, verdict.delay, now)
        request.done = asyncio.get_running_loop().create_future()
        try:
            self.journal.accepted(request)
        except Unavailable as exc:
            log.error("journal write failed for %s: %s", request.activation_id, exc)
        self._spawn(request)
        return True
