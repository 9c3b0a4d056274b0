"""The executor: one attempt of an accepted invocation, lease → init → run → record.

``run(request)`` is the body of the task that carries one ``InvocationRequest``:

1. ``async with pool.lease(...)``: the instance goes back to the pool (or is killed)
   on every path, an exception or a cancellation included.
2. It marks the request STARTED (journal: ``started``), cold-starts the instance
   when it needs code (``init``), then ``run``s it with the deadline.
3. ``records`` turns the outcome into an activation record (pure).
4. ``settle(request, record)`` is the single place where a finished attempt becomes
   "record it": annotate, hand to the writer, release quota and journal entry,
   notify observers, resolve the caller's future.

Retries (``retrying``, for asynchronous requests with an invoke config) decide between
attempt and settle: run ``request`` again after its backoff (attempt + 1, state RETRIED,
journaled again; the task sleeps holding no quota, and a stop leaves it in the journal),
or record it as DEAD and keep a dead letter. Only the final attempt is recorded, under
the caller's activation id, with the earlier attempts as an annotation.

Waiting for an instance (the pool is full, or the function is at its ``max-instances``)
is not running time: the time limit starts when the instance is leased, and the wait
shows as ``waitTime``. The wait is bounded by the activation's maximum event age
(``invokeConfig.maximumEventAgeSeconds``, six hours by default) counted from its accept:
past it the attempt ends without running, as a dead letter (``EventAgeExceeded``) for
an asynchronous activation with a retry policy, else as a whisk internal error. A
blocking caller stops waiting at the sync limit (it gets the 202) as for a slow run.

An attempt that never got an instance is not finished: a stop (``PoolClosed``, or a
cancellation before STARTED) leaves it ACCEPTED in the journal, and it runs after
the restart. One cancelled after STARTED (a drain that ran out) is recorded as
interrupted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from wisp.config import Settings
from wisp.errors import NotFound, Unavailable
from wisp.invoker import records, retrying
from wisp.invoker.admission import Admission
from wisp.invoker.base import Observer, Target
from wisp.invoker.deadletters import DeadLetters
from wisp.invoker.journal import AcceptJournal
from wisp.invoker.request import InvocationRequest
from wisp.invoker.retries import EVENT_AGE_EXCEEDED, Decision
from wisp.invoker.states import ActivationState
from wisp.models import Action, Activation
from wisp.pool import Pool, PoolClosed
from wisp.sandbox.base import Code, Outcome
from wisp.sandbox.bundles import BundleCache, BundleError
from wisp.secrets import Revealed, Vault, reveal
from wisp.store.writer import ActivationWriter

log = logging.getLogger("wisp.invoker")

# Outcomes after which an instance must not be reused.
POISONED = {"init", "timeout", "oom", "crash", "platform"}
MAX_INSTANCES = "max-instances"  # annotation: cap on one function version's instances
NETWORK = "network"  # annotation: "egress" (default) or "none" (loopback only)


class WaitedTooLong(Exception):
    """An attempt's wait for an instance passed its maximum event age."""

    def __init__(self, waited: int, age: int) -> None:
        super().__init__(
            f"The activation waited {waited} milliseconds for an instance of its function "
            f"without getting one; its maximum event age is {age} seconds."
        )
        self.waited = waited


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Executor:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        bundles: BundleCache,
        writer: ActivationWriter,
        admission: Admission,
        observers: list[Observer],
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.settings = settings
        self.dead_letters = dead_letters
        self.pool = pool
        self.bundles = bundles
        self.writer = writer
        self.admission = admission
        self.journal: AcceptJournal | None = admission.journal
        self.observers = observers
        self.cold_starts = 0
        self.invocations = 0
        self.vault: Vault | None = None  # set by the server: secrets referenced by functions

    async def run(self, request: InvocationRequest) -> None:
        """Run the request's attempts to its record; never raises but a cancellation."""
        while True:
            wait = retrying.due_in(request, now_ms())
            if wait > 0:
                # Waiting for its backoff it holds no quota; a stop cancels it here and
                # the journal keeps it for the next start.
                await asyncio.sleep(wait)
                if self.admission.quotas is not None:
                    self.admission.quotas.enter(request.action.namespace)
            request.state = ActivationState.ACCEPTED
            if retrying.expired(request, now_ms()):
                record = records.internal(request, retrying.TOO_OLD, now_ms())
                verdict = Decision("dead", reason=EVENT_AGE_EXCEEDED)
            else:
                if request.attempt > 1:
                    retrying.began(request, now_ms())
                try:
                    found = await self._attempt(request)
                except WaitedTooLong as exc:
                    self.admission.release(request)
                    record = records.internal(request, str(exc), now_ms())
                    record.annotations.append({"key": "waitTime", "value": exc.waited})
                    verdict = retrying.waited_too_long(request)
                else:
                    if found is None:
                        return
                    record = found
                    verdict = retrying.decide(request, record, now_ms())
            if verdict.verb == "retry":
                self._retry(request, record, verdict.delay)
                continue
            if verdict.verb == "dead":
                await self._bury(request, record, verdict.reason)
                return
            self.settle(request, record)
            return

    async def _bury(self, request: InvocationRequest, record: Activation, reason: str) -> None:
        """Record it as dead; its dead letter is stored first (so it is listed once the
        record can be read), then sent to the onFailure destination."""
        letter = retrying.bury(request, record, reason, now_ms())
        if self.dead_letters is None:
            self.settle(request, record)
            return
        try:
            await self.dead_letters.keep(letter)
        finally:  # a cancellation (a stop) must not lose the record
            self.settle(request, record)
        await self.dead_letters.send(letter, request.target.invoke_config.on_failure)

    async def _attempt(self, request: InvocationRequest) -> Activation | None:
        """One attempt's record; None when it never started (it stays journaled)."""
        try:
            return await self.attempt(request)
        except PoolClosed:
            self.admission.release(request)  # never started: stays journaled
            return None
        except WaitedTooLong:
            raise
        except asyncio.CancelledError:
            if request.state is ActivationState.STARTED:
                record = records.interrupted(request, now_ms())
                verdict = retrying.decide(request, record, now_ms())
                if verdict.verb == "retry":  # journaled: it runs after the restart
                    self._retry(request, record, verdict.delay)
                else:
                    self.settle(request, record)
            else:
                self.admission.release(request)  # never started: stays journaled
            raise
        except Exception as exc:
            log.exception("activation %s failed inside the platform", request.activation_id)
            error = str(exc) or type(exc).__name__
            return records.internal(request, f"the platform failed: {error}", now_ms())

    def _retry(self, request: InvocationRequest, record: Activation, delay: float) -> None:
        """This attempt failed and another is due after ``delay`` seconds."""
        retrying.schedule(request, record, delay, now_ms())
        self.admission.release(request)
        if self.journal is not None:
            try:
                self.journal.retried(request)
            except Unavailable as exc:  # it runs on; only a crash in the wait would lose it
                log.error("journal write failed for %s: %s", request.activation_id, exc)

    def settle(self, request: InvocationRequest, record: Activation) -> None:
        """A finished request → its record (the final attempt's, retries decided)."""
        retrying.finish(request, record)
        records.annotate(record, request)
        request.state = ActivationState.FINISHED
        self.invocations += 1
        self.writer.submit(record)
        self.admission.release(request)
        if self.journal is not None:
            self.journal.finished(request, record)
        for observe in self.observers:
            try:
                observe(record)
            except Exception:
                log.exception("an activation observer failed")
        done = request.done
        if done is not None and not done.done():
            done.set_result(record)

    async def attempt(self, request: InvocationRequest) -> Activation:
        """Lease an instance, init it when cold, run: the attempt's record."""
        action = request.action
        limits = action.limits
        log_limit = limits.logs * 1024
        accepted = retrying.accepted_at(request)  # a retry's: when it became due
        cap, network = placement(action, self.settings.network)
        key = (action.namespace, action.package, action.name, action.version)
        age = request.target.invoke_config.maximum_event_age_seconds
        # The wait ends at the event age, on the loop's clock (monotonic).
        wait_left = max(0.0, (request.start + age * 1000 - now_ms()) / 1000)
        waiting = asyncio.timeout(wait_left)
        # Secrets are decrypted here, for this attempt only, before anything runs: one
        # that fails authentication fails the attempt (a clear error naming it).
        try:
            revealed = await self._reveal(request)
        except NotFound as exc:  # deleted after the deploy: the function's setup is wrong
            return self._init_failed(request, exc.message, now_ms() - accepted)
        try:
            async with (
                waiting,
                self.pool.lease(key, action.exec.kind, limits.memory, cap, network) as lease,
            ):
                waiting.reschedule(None)  # leased: the function's own time starts
                self._started(request)
                started = now_ms()
                deadline = started + limits.timeout  # init and run, not the wait
                wait_time = started - accepted
                assert lease.instance is not None
                logs: list[str] = []
                init_time: int | None = None
                if lease.cold:
                    self.cold_starts += 1
                    init_start = now_ms()
                    try:
                        code = await self._code(request.target, revealed.env)
                    except BundleError as exc:
                        lease.spoiled = True
                        return self._init_failed(request, exc.message, wait_time)
                    outcome = await lease.instance.init(code, remaining(deadline), log_limit)
                    init_time = now_ms() - init_start
                    logs.extend(outcome.logs)
                    if not outcome.ok:
                        lease.spoiled = True
                        return revealed.mask(
                            records.from_outcome(
                                request,
                                outcome,
                                logs,
                                wait_time=wait_time,
                                init_time=init_time,
                                result_max=self.settings.limits.result_max,
                                end=now_ms(),
                            )
                        )
                outcome = await lease.instance.run(
                    revealed.args, self._meta(request, deadline), remaining(deadline), log_limit
                )
                logs.extend(outcome.logs)
                lease.spoiled = outcome.kind in POISONED
        except TimeoutError:
            if waiting.expired():
                raise WaitedTooLong(now_ms() - accepted, age) from None
            raise
        return revealed.mask(
            records.from_outcome(
                request,
                outcome,
                logs,
                wait_time=wait_time,
                init_time=init_time,
                result_max=self.settings.limits.result_max,
                end=now_ms(),
            )
        )

    async def _reveal(self, request: InvocationRequest) -> Revealed:
        target = request.target
        if not target.env_secrets and not any(
            isinstance(v, dict) and "$secret" in v for v in target.parameters.values()
        ):
            return Revealed(target.env, request.args)  # no store round trip
        return await asyncio.to_thread(
            reveal,
            self.vault,
            request.action.namespace,
            target.parameters,
            target.env_secrets,
            target.env,
            request.args,
        )

    async def warm(self, target: Target) -> bool:
        """Init an instance of the target's version and leave it idle, unless one is."""
        action = target.action
        cap, network = placement(action, self.settings.network)
        key = (action.namespace, action.package, action.name, action.version)
        limits = action.limits
        async with self.pool.lease(key, action.exec.kind, limits.memory, cap, network) as lease:
            if not lease.cold:
                return True
            assert lease.instance is not None
            try:
                code = await self._code(target)
            except BundleError:
                lease.spoiled = True
                return False
            outcome = await lease.instance.init(code, limits.timeout / 1000, limits.logs * 1024)
            lease.spoiled = not outcome.ok
            return outcome.ok

    def _started(self, request: InvocationRequest) -> None:
        request.state = ActivationState.STARTED
        if self.journal is not None:
            try:
                self.journal.started(request)
            except OSError as exc:  # after a crash it would be re-run, not failed
                log.error("journal write failed for %s: %s", request.activation_id, exc)

    def _meta(self, request: InvocationRequest, deadline: int) -> dict[str, Any]:
        action = request.action
        meta: dict[str, Any] = {
            "activation_id": request.activation_id,
            "transaction_id": request.request_id or request.activation_id,
            "namespace": action.namespace,
            "action_name": action.path,
            "action_version": action.version,
            "api_host": self.settings.public_api_host,
            "deadline": deadline,
            "attempt": request.attempt,
        }
        trace = request.trace
        if trace is not None:
            meta["trace_parent"] = trace.traceparent
            if trace.state:
                meta["trace_state"] = trace.state
        return meta

    def _init_failed(self, request: InvocationRequest, error: str, wait_time: int) -> Activation:
        return records.from_outcome(
            request,
            Outcome(False, kind="init", error=error),
            [],
            wait_time=wait_time,
            init_time=None,
            result_max=self.settings.limits.result_max,
            end=now_ms(),
        )

    async def _code(self, target: Target, env: dict[str, str] | None = None) -> Code:
        action = target.action
        env = target.env if env is None else env
        code = Code(main=action.exec.main, env=env, memory_mb=action.limits.memory)
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
