"""One sandboxed process, seen from the server: its control socket and its logs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from wisp import codec
from wisp.sandbox.base import Code, Instance, Outcome
from wisp.sandbox.cgroups import Slot
from wisp.sandbox.protocol import ControlChannel, ProtocolViolation, ReplyTooLarge
from wisp.sandbox.usage import UsageMeter

MARKER = b"XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
MARKER_WAIT = 0.2  # seconds to wait for both streams' markers after a reply
# Past its log limit a stream is read this often at most: a flooder then blocks on its
# full pipe instead of waking the event loop for every 64 KB it writes.
FLOOD_PAUSE = 0.02
# Every CPU_DEMOTE_AFTER seconds of an exchange, an instance that spent at least CPU_HOG
# of that time on a CPU or waiting for one (a spinner, a fork bomb, however busy the host;
# not one waiting on I/O or a sleep) gets a low CPU weight until it answers: other
# tenants' short requests preempt it (cgroups only).
CPU_DEMOTE_AFTER = 0.05
CPU_HOG = 0.5
# An instance whose main thread has used this much CPU in its life is retired after its
# run, half way to the RLIMIT_CPU backstop (3600 s) that would otherwise kill it mid-run.
CPU_RETIRE_NS = 1800 * 10**9
# Every launcher frames a run's result as {"result":<json>}: the result's size is the
# frame's less these 11 bytes, and a frame past result_max + 11 is refused unread.
RESULT_FRAMING = len(b'{"result":}')
INIT_REPLY_MAX = 1024 * 1024  # {"ok":false,"error":...}: a load error's text


class LogCollector:
    """Timestamped lines of both streams for the current activation, capped in bytes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.limit = 0
        self.truncated = False
        self.markers = 0
        self.pipes: list[LogPipe] = []
        self._marked: asyncio.Future[None] | None = None  # someone waits for the markers

    def reset(self, limit: int) -> None:
        self.lines = []
        self.size = 0
        self.limit = limit
        self.truncated = False
        self.markers = 0

    def add(self, stream: str, stamp: str, line: bytes) -> None:
        if line == MARKER:
            self.markers += 1
            marked = self._marked
            if self.markers >= 2 and marked is not None and not marked.done():
                marked.set_result(None)
            return
        if line.endswith(MARKER):  # the activation's last output had no newline
            self.add(stream, stamp, line[: -len(MARKER)])
            self.add(stream, stamp, MARKER)
            return
        if self.truncated:
            return
        self.size += len(line)
        if self.size > self.limit:
            self.truncated = True
            return
        text = line.decode("utf-8", "replace")
        self.lines.append(f"{stamp} {stream}: {text}")

    async def wait_markers(self, seconds: float) -> None:
        """Until both streams' end-of-activation markers came, or ``seconds`` passed."""
        if self.markers >= 2:
            return
        loop = asyncio.get_running_loop()
        marked = self._marked = loop.create_future()
        timer = loop.call_later(seconds, _settle, marked)
        try:
            await marked
        finally:
            timer.cancel()
            self._marked = None

    def give_up(self) -> None:
        """Stop waiting for markers that cannot come (the instance was killed)."""
        if self._marked is not None:
            _settle(self._marked)

    def end_quietly(self) -> None:
        """No markers come (a QUIET reply): everything written was read, so a last
        line without a newline is complete."""
        stamp = now_stamp()
        for pipe in self.pipes:
            if pipe.partial:
                self.add(pipe.stream, stamp, pipe.partial)
                pipe.partial = b""

    def take(self) -> list[str]:
        lines = self.lines
        if self.truncated:
            lines.append(
                f"{now_stamp()} stderr: Logs were truncated because the total bytes size "
                f"exceeds the limit of {self.limit} bytes."
            )
        self.lines = []
        return lines


class LogPipe(asyncio.Protocol):
    def __init__(self, stream: str, collector: LogCollector) -> None:
        self.stream = stream
        self.collector = collector
        self.partial = b""
        self.transport: asyncio.ReadTransport | None = None
        collector.pipes.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's pipe transports are not asyncio.ReadTransport subclasses: no isinstance.
        self.transport = cast(asyncio.ReadTransport, transport)

    def data_received(self, data: bytes) -> None:
        if self.collector.truncated:
            self._skim(data)
            return
        stamp = now_stamp()
        data = self.partial + data
        *lines, self.partial = data.split(b"\n")
        for line in lines:
            self.collector.add(self.stream, stamp, line)
        if len(self.partial) > 64 * 1024:  # a runaway line without newline
            self.collector.add(self.stream, stamp, self.partial)
            self.partial = b""

    def _skim(self, data: bytes) -> None:
        """Past the limit only the end-of-activation marker matters: search for it
        instead of splitting lines, then pause reading for a moment."""
        data = self.partial + data
        end = data.rfind(MARKER + b"\n")
        if end >= 0:
            self.collector.add(self.stream, "", MARKER)
            self.partial = data[end + len(MARKER) + 1 :]  # the next activation's
            return
        self.partial = data[-len(MARKER) :]  # a marker may straddle two reads
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()
            asyncio.get_running_loop().call_later(FLOOD_PAUSE, self._resume)

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


def _settle(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_result(None)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


_second = -1
_prefix = ""


def now_stamp() -> str:
    """``2026-01-01T00:00:00.000000Z``; the date part is formatted once a second."""
    global _second, _prefix
    ns = time.time_ns()
    second, rest = divmod(ns, 1_000_000_000)
    if second != _second:
        _second = second
        _prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{_prefix}.{rest // 1000:06d}Z"


class LocalInstance(Instance):
    def __init__(
        self,
        kind: str,
        pid: int,
        channel: ControlChannel,
        logs: LogCollector,
        transports: list[asyncio.ReadTransport],
        slot: Slot | None,
        on_dead: Callable[[LocalInstance], None],
        result_max: int,  # Settings.limits.result_max: a run's reply past it is refused
    ) -> None:
        self.kind = kind
        self.pid = pid
        self.memory_mb = 0
        self.channel = channel
        channel.on_violation = self._violated
        self.result_max = result_max
        self.logs = logs
        self.transports = transports
        self.slot = slot
        self.on_dead = on_dead
        self.exit_signal: int | None = None
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._killed = False
        self._timer: asyncio.TimerHandle | None = None  # the running exchange's
        self.uid: int | None = None
        self.meter = UsageMeter(pid, slot)

    @property
    def alive(self) -> bool:
        return not self._killed and not self.exited.done()

    def mark_exited(self, signum: int) -> None:
        self.exit_signal = signum
        if not self.exited.done():
            self.exited.set_result(signum)

    async def init(self, code: Code, timeout: float, log_limit: int) -> Outcome:
        self.memory_mb = code.memory_mb
        if self.slot is not None:
            self.slot.set_memory(code.memory_mb)
        message = {
            "op": "init",
            "code": code.source,
            "bundle": code.bundle,
            "main": code.main,
            "env": code.env,
            "memory_mb": code.memory_mb,
        }
        return await self._exchange(message, timeout, log_limit, INIT_REPLY_MAX)

    async def run(
        self, args: dict[str, Any], meta: dict[str, Any], timeout: float, log_limit: int
    ) -> Outcome:
        self.meter.begin()
        message = {"op": "run", "args": args, "meta": meta}
        limit = self.result_max + RESULT_FRAMING
        outcome = await self._exchange(message, timeout, log_limit, limit)
        usage = self.meter.end()
        outcome.cpu_ms, outcome.peak_memory = usage.cpu_ms, usage.peak_memory
        if self.meter.lifetime_cpu_ns() > CPU_RETIRE_NS:
            await self.kill()  # not reusable: the pool takes the next call elsewhere
        return outcome

    async def _exchange(
        self, message: dict[str, Any], timeout: float, log_limit: int, reply_max: int
    ) -> Outcome:
        if not self.alive:
            if self.channel.violation is not None:  # between two exchanges of one lease
                return self._broken(self.channel.violation, message["op"])
            return Outcome(False, error="the instance is gone", kind="crash")
        self.logs.reset(log_limit)
        try:
            reply = self.channel.request(message, reply_max)
            self._watch(reply, timeout)
            try:
                raw, quiet = await reply
            finally:
                if self._timer is not None:
                    self._timer.cancel()
        except TimeoutError:
            await self.kill()
            return Outcome(False, kind="timeout", logs=self.logs.take())
        except asyncio.CancelledError:
            # Abandoned mid-exchange (shutdown): its state is unknown, so it must go.
            await self.kill()
            raise
        except ReplyTooLarge as exc:
            # The launcher marks the logs' end before it sends: they are complete.
            await self._collect_logs(exc.quiet)
            await self.kill()
            return self._broken(exc, message["op"])
        except ProtocolViolation as exc:
            return self._broken(exc, message["op"])
        except (ConnectionError, OSError, ValueError):
            return await self._died()
        slot = self.slot
        if slot is not None:
            if not slot.cpu_low:
                if slot.fence is not None:
                    slot.fence.short_exchange()
            elif not self._killed:
                slot.set_cpu_low(False)
        await self._collect_logs(quiet)
        outcome = decode_reply(raw, message["op"], self.logs.take())
        if outcome.kind == "crash":  # a malformed reply: this instance is not reused
            await self.kill()
            return outcome
        violation = self.channel.violation  # more came after the reply, while logs settled
        if violation is not None:
            return self._broken(violation, message["op"], outcome.logs)
        return outcome

    async def _collect_logs(self, quiet: bool) -> None:
        if quiet:
            self.logs.end_quietly()
        else:
            await self.logs.wait_markers(MARKER_WAIT)

    def _violated(self, violation: ProtocolViolation) -> None:
        """The channel saw the sandbox break the protocol: this instance is done, at
        once (a flood must not run on), whether or not an exchange is under way."""
        if not isinstance(violation, ReplyTooLarge):  # whose logs are still wanted
            self._stop()
            self.logs.give_up()

    def _broken(
        self, violation: ProtocolViolation, op: str, logs: list[str] | None = None
    ) -> Outcome:
        self._stop()
        if logs is None:
            logs = self.logs.take()
        if isinstance(violation, ReplyTooLarge):
            if op == "init":
                error = f"the runtime's reply of {violation.size} bytes exceeds the limit of "
                error += f"{violation.limit} bytes"
                return Outcome(False, kind="init", error=error, logs=logs)
            size = violation.size - RESULT_FRAMING
            return Outcome(
                False,
                kind="crash",
                error=f"The action produced a response that exceeded the allowed length: "
                f"{size} > {self.result_max} bytes.",
                size=size,
                logs=logs,
            )
        return broken(str(violation), logs)

    def _watch(self, reply: asyncio.Future[Any], timeout: float) -> None:
        """One timer per exchange: the CPU demotion (with a cgroup), then the deadline."""
        loop = asyncio.get_running_loop()
        expires = loop.time() + timeout
        if self.slot is not None and timeout > CPU_DEMOTE_AFTER:
            busy = self.meter.runnable_start  # as meter.begin() read it, for a run
            if busy is None:
                busy = self.meter.runnable_ns()
            self._timer = loop.call_later(CPU_DEMOTE_AFTER, self._demote, reply, expires, busy)
        else:
            self._timer = loop.call_at(expires, _expire, reply)

    def _demote(self, reply: asyncio.Future[Any], expires: float, since: int | None) -> None:
        if reply.done() or self.slot is None:
            return
        loop = asyncio.get_running_loop()
        now = self.meter.runnable_ns()
        used = now - since if now is not None and since is not None else 0
        if used >= CPU_HOG * CPU_DEMOTE_AFTER * 1e9:
            self.slot.set_cpu_low(True)
        elif loop.time() + CPU_DEMOTE_AFTER < expires:
            self._timer = loop.call_later(CPU_DEMOTE_AFTER, self._demote, reply, expires, now)
            return
        self._timer = loop.call_at(expires, _expire, reply)

    async def _died(self) -> Outcome:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), 1.0)
            # Let the pipes drain what the process wrote before it died.
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            await self.kill()
            raise
        oom = self.slot.oom_killed() if self.slot is not None else False
        signum = self.exit_signal or 0
        await self.kill()
        if oom:
            return Outcome(False, kind="oom", logs=self.logs.take())
        what = f"signal {signum}" if signum else "exit"
        return Outcome(
            False,
            kind="crash",
            error=f"The action did not produce a valid response and exited unexpectedly ({what}).",
            logs=self.logs.take(),
        )

    async def kill(self) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._killed:
            return
        self._killed = True
        self.meter.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self.slot is not None:
            self.slot.kill_all()
        self.channel.close()
        for transport in self.transports:
            transport.close()
        self.on_dead(self)


def broken(detail: str, logs: list[str]) -> Outcome:
    """A reply the protocol does not allow: the instance is killed, never reused."""
    error = f"The action broke the runtime protocol ({detail}); its instance was stopped."
    return Outcome(False, kind="crash", error=error, logs=logs)


_RUN_REPLIES = ("result", "exception", "invalid", "oom")
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def json_type(value: Any) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


def decode_reply(raw: bytes, op: str, logs: list[str]) -> Outcome:
    """What a reply says; whatever the sandboxed side sent, never an exception."""
    try:
        reply = codec.loads(raw)
    except (ValueError, RecursionError):
        return broken(f"a reply of {len(raw)} bytes that is not JSON", logs)
    if not isinstance(reply, dict):
        return broken(f"a reply that is a JSON {json_type(reply)}, not an object", logs)
    if op == "init":
        ok = reply.get("ok")
        if ok is True:
            return Outcome(True, logs=logs)
        if ok is False:
            return Outcome(False, kind="init", error=str(reply.get("error", "")), logs=logs)
        return broken('an init reply without "ok": true or false', logs)
    if "result" in reply:
        result = reply["result"]
        if not isinstance(result, dict):  # every launcher sends "invalid" for those
            return broken(f"a result that is a JSON {json_type(result)}, not an object", logs)
        # The launcher frames the result as {"result":<json>}: its size is the body's.
        return Outcome(True, result=result, size=len(raw) - RESULT_FRAMING, logs=logs)
    if reply.get("oom"):
        return Outcome(False, kind="oom", logs=logs)
    if "exception" in reply:
        return Outcome(False, kind="exception", error=str(reply["exception"]), logs=logs)
    if "invalid" in reply:
        return Outcome(False, kind="invalid", error=str(reply["invalid"]), logs=logs)
    return broken("a run reply with none of " + ", ".join(_RUN_REPLIES), logs)
