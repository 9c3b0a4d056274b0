"""The invoker for sandboxes on this host: pool → init (when cold) → run → record."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wisp.config import Settings
from wisp.ids import activation_id as new_activation_id
from wisp.invoker.base import Invocation, Invoker, Target
from wisp.invoker.journal import AcceptJournal
from wisp.invoker.quotas import Quotas
from wisp.models import (
    APPLICATION_ERROR,
    DEVELOPER_ERROR,
    INTERNAL_ERROR,
    SUCCESS,
    Action,
    Activation,
)
from wisp.observability.logs import REQUEST_ID
from wisp.observability.tracing import SAMPLED, Trace, incoming, new_trace
from wisp.pool import Lease, Pool
from wisp.sandbox.base import Code, Outcome, Sandbox
from wisp.sandbox.bundles import BundleCache, BundleError
from wisp.store.writer import ActivationWriter

log = logging.getLogger("wisp.invoker")

STOP_GRACE = 5.0  # seconds running invocations get to record themselves at shutdown
# Outcomes after which an instance must not be reused.
POISONED = {"init", "timeout", "oom", "crash", "platform"}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


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
    ) -> None:
        self.settings = settings
        self.quotas = quotas
        self.journal = journal
        self.sandbox = sandbox
        self.pool = pool
        self.writer = writer
        self.bundles = bundles
        self._running: set[asyncio.Task[None]] = set()
        self.cold_starts = 0
        self.invocations = 0
        # Called with each finished record (metrics, live stream, rollups); each must
        # be cheap and never block: they run on the invocation's own path.
        self.observers: list[Callable[[Activation], None]] = []
        self.tracing = settings.tracing == "on"

    @property
    def isolation(self) -> dict[str, str]:
        return {
            "level": self.sandbox.level,
            "layers": self.sandbox.isolation,
            "egress": self.sandbox.egress_mode,
        }

    async def start(self) -> None:
        await asyncio.to_thread(self.bundles.prepare)
        if self.journal is not None:
            # Before serving: what a crash left unfinished is recorded as failed.
            await asyncio.to_thread(self.journal.recover)
            self.journal.open()
        await self.sandbox.start()
        await self.pool.start()

    async def stop(self) -> None:
        await self.pool.stop()
        await self.sandbox.stop()
        # Instances are gone: running invocations finish at once, recorded as failed.
        if self._running:
            _, left = await asyncio.wait(list(self._running), timeout=STOP_GRACE)
            for task in left:
                task.cancel()
        if self.journal is not None:
            # Bounded: with the store down, what is unwritten stays on disk.
            await asyncio.to_thread(self.journal.close, True, self.settings.writer_stop_timeout)

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
        self.writer.admit()  # 503 while the store cannot keep up: raises before anything
        if self.quotas is not None:
            self.quotas.admit(target.action.namespace)  # raises before anything starts
        aid = activation_id or new_activation_id()
        done: asyncio.Future[Activation] = asyncio.get_running_loop().create_future()
        args = {**target.parameters, **params} if target.parameters else params
        start = now_ms()
        entry = _JournalEntry()
        on_detach = None
        if self.journal is not None:
            journal, action = self.journal, target.action

            def accepted() -> None:
                entry.generation = journal.accepted(
                    aid, action.path, action.namespace, action.version, action.exec.kind, start
                )

            # A blocking invocation is journaled only if its caller stops waiting:
            # one file write less per call answered within the wait.
            if blocking:
                on_detach = accepted
            else:
                try:
                    accepted()
                except BaseException:
                    if self.quotas is not None:
                        self.quotas.done(action.namespace)  # it never started
                    raise
        if trace is None:
            trace = incoming()  # the HTTP request's traceparent, when it had one
            if trace is None and self.tracing:
                trace = new_trace()
        origin = Origin(REQUEST_ID.get(), trace)
        task = asyncio.create_task(
            self._invoke(aid, target, args, subject, cause, done, start, entry, origin)
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return Invocation(aid, done, on_detach)

    async def _invoke(
        self,
        aid: str,
        target: Target,
        args: dict[str, Any],
        subject: str,
        cause: str | None,
        done: asyncio.Future[Activation],
        start: int,
        entry: _JournalEntry,
        origin: Origin,
    ) -> None:
        action = target.action
        try:
            record = await self._execute(aid, target, args, start, origin)
        except Exception as exc:
            log.exception("activation %s failed inside the platform", aid)
            record = self._record(aid, action, start, INTERNAL_ERROR, {"error": str(exc)}, [])
        finally:
            if self.quotas is not None:
                self.quotas.done(action.namespace)
        record.subject = subject
        record.cause = cause
        origin.annotate(record)
        self.invocations += 1
        self.writer.submit(record)
        if self.journal is not None and entry.generation is not None:
            self.journal.finished(entry.generation)
        for observe in self.observers:
            try:
                observe(record)
            except Exception:
                log.exception("an activation observer failed")
        if not done.done():
            done.set_result(record)

    async def _execute(
        self, aid: str, target: Target, args: dict[str, Any], start: int, origin: Origin
    ) -> Activation:
        action = target.action
        limits = action.limits
        log_limit = limits.logs * 1024
        deadline = start + limits.timeout
        cap, network = placement(action, self.settings.network)
        lease = await self.pool.acquire(
            (action.namespace, action.package, action.name, action.version),
            action.exec.kind,
            limits.memory,
            cap,
            network,
        )
        wait_time = now_ms() - start
        assert lease.instance is not None
        logs: list[str] = []
        init_time: int | None = None
        if lease.cold:
            self.cold_starts += 1
            init_start = now_ms()
            try:
                code = await self._code(target)
            except BundleError as exc:
                await self.pool.discard(lease)
                return self._failed(aid, action, start, exc.message, [], wait_time, None)
            outcome = await lease.instance.init(code, remaining(deadline), log_limit)
            init_time = now_ms() - init_start
            logs.extend(outcome.logs)
            if not outcome.ok:
                await self.pool.discard(lease)
                return self._from_outcome(aid, action, start, outcome, logs, wait_time, init_time)
        meta = {
            "activation_id": aid,
            "transaction_id": origin.request_id or aid,
            "namespace": action.namespace,
            "action_name": action.path,
            "action_version": action.version,
            "api_host": self.settings.public_api_host,
            "deadline": deadline,
        }
        if origin.trace is not None:
            meta["trace_parent"] = origin.trace.traceparent
            if origin.trace.state:
                meta["trace_state"] = origin.trace.state
        outcome = await lease.instance.run(args, meta, remaining(deadline), log_limit)
        logs.extend(outcome.logs)
        await self._give_back(lease, outcome)
        return self._from_outcome(aid, action, start, outcome, logs, wait_time, init_time)

    async def _give_back(self, lease: Lease, outcome: Outcome) -> None:
        if outcome.kind in POISONED:
            await self.pool.discard(lease)
        else:
            self.pool.release(lease)

    async def _code(self, target: Target) -> Code:
        action = target.action
        code = Code(main=action.exec.main, env=target.env, memory_mb=action.limits.memory)
        if action.exec.build:
            code.bundle = self._built(action.exec.build)
        elif action.exec.binary:
            code.bundle = await asyncio.to_thread(
                self.bundles.unpack, action.exec.digest, action.exec.code
            )
        else:
            code.source = action.exec.code
        return code

    def _built(self, name: str) -> str:
        """The folder of a server-side build (made at deploy time, see wisp.builds)."""
        path = self.bundles.root / name
        if not path.is_dir():
            raise BundleError(f"the build {name} of this version is missing here; deploy it again")
        return str(path)

    def _from_outcome(
        self,
        aid: str,
        action: Action,
        start: int,
        outcome: Outcome,
        logs: list[str],
        wait_time: int,
        init_time: int | None,
    ) -> Activation:
        timed_out = outcome.kind == "timeout"
        if outcome.ok:
            result = outcome.result
            if outcome.size > self.settings.limits.result_max:
                status = DEVELOPER_ERROR
                result = {
                    "error": f"The action produced a response that exceeded the allowed "
                    f"length: {outcome.size} > {self.settings.limits.result_max} bytes."
                }
            elif isinstance(result, dict) and "error" in result:
                status = APPLICATION_ERROR
            else:
                status = SUCCESS
        else:
            status = DEVELOPER_ERROR
            result = {"error": self._error_text(outcome, action)}
        record = self._record(aid, action, start, status, result, logs)
        record.result_size = outcome.size
        record.annotations.append({"key": "waitTime", "value": wait_time})
        if init_time is not None:
            record.annotations.append({"key": "initTime", "value": init_time})
        record.annotations.append({"key": "timeout", "value": timed_out})
        if outcome.cpu_ms is not None:
            record.annotations.append({"key": "cpuTime", "value": outcome.cpu_ms})  # ms
        if outcome.peak_memory is not None:
            record.annotations.append({"key": "peakMemory", "value": outcome.peak_memory})
        if outcome.kind == "oom":
            record.annotations.append({"key": "oom", "value": True})
        return record

    @staticmethod
    def _error_text(outcome: Outcome, action: Action) -> str:
        if outcome.kind == "timeout":
            return f"The action exceeded its time limits of {action.limits.timeout} milliseconds."
        if outcome.kind == "oom":
            return (
                f"The action exceeded its memory limit of {action.limits.memory} MB "
                "and was stopped."
            )
        if outcome.kind == "init":
            return f"Initialization has failed: {outcome.error}"
        return outcome.error or "The action failed."

    def _failed(
        self,
        aid: str,
        action: Action,
        start: int,
        error: str,
        logs: list[str],
        wait_time: int,
        init_time: int | None,
    ) -> Activation:
        outcome = Outcome(False, kind="init", error=error)
        return self._from_outcome(aid, action, start, outcome, logs, wait_time, init_time)

    @staticmethod
    def _record(
        aid: str, action: Action, start: int, status: int, result: Any, logs: list[str]
    ) -> Activation:
        return Activation(
            activation_id=aid,
            namespace=action.namespace,
            name=action.path,
            version=action.version,
            subject=action.namespace,
            start=start,
            end=now_ms(),
            status_code=status,
            result=result,
            logs=logs,
            annotations=[
                {"key": "path", "value": action.fqn},
                {"key": "kind", "value": action.exec.kind},
                {
                    "key": "limits",
                    "value": {
                        "timeout": action.limits.timeout,
                        "memory": action.limits.memory,
                        "logs": action.limits.logs,
                        "concurrency": 1,
                    },
                },
            ],
            publish=action.publish,
        )


class Origin:
    """Where an invocation came from: the HTTP request's id and the trace it is in."""

    __slots__ = ("request_id", "trace")

    def __init__(self, request_id: str | None, trace: Trace | None) -> None:
        self.request_id = request_id
        self.trace = trace

    def annotate(self, record: Activation) -> None:
        annotations = record.annotations
        if self.request_id is not None:
            annotations.append({"key": "requestId", "value": self.request_id})
        trace = self.trace
        if trace is not None:
            annotations.append({"key": "traceId", "value": trace.trace_id})
            annotations.append({"key": "spanId", "value": trace.span_id})
            if trace.parent_id is not None:
                annotations.append({"key": "parentSpanId", "value": trace.parent_id})
            if trace.flags != SAMPLED:
                annotations.append({"key": "sampled", "value": False})


@dataclass
class _JournalEntry:
    generation: int | None = None  # the journal file it went to, once written


MAX_INSTANCES = "max-instances"  # annotation: cap on one function version's instances
NETWORK = "network"  # annotation: "egress" (default) or "none" (loopback only)


def placement(action: Action, default_network: str) -> tuple[int | None, str]:
    """The function's instance cap and network mode, from one pass over its annotations."""
    cap: int | None = None
    network: str | None = None
    for annotation in action.annotations:  # the first valid value of each wins
        key, value = annotation.get("key"), annotation.get("value")
        if key == MAX_INSTANCES and cap is None:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                cap = value
        elif key == NETWORK and network is None and value in ("egress", "none"):
            network = str(value)
    return cap, network or default_network


def remaining(deadline: int) -> float:
    """Seconds left until ``deadline`` (epoch ms); init time counts against the timeout."""
    return max(0.001, (deadline - now_ms()) / 1000)
