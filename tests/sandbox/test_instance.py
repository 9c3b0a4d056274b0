"""The server's side of an instance: log streams under a flood, and the control socket
against whatever a function writes to it."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import uvloop

from wisp.config import Limits, Settings
from wisp.runtimes import RuntimeTable, discover
from wisp.sandbox.base import Code
from wisp.sandbox.instance import (
    FLOOD_PAUSE,
    INIT_REPLY_MAX,
    MARKER,
    LocalInstance,
    LogCollector,
    LogPipe,
)
from wisp.sandbox.local import LocalSandbox
from wisp.sandbox.protocol import HEADER


class FakeTransport(asyncio.ReadTransport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = 0
        self.resumed = 0
        self.closed = False

    def pause_reading(self) -> None:
        self.paused += 1

    def resume_reading(self) -> None:
        self.resumed += 1

    def is_closing(self) -> bool:
        return self.closed


def pipe(limit: int) -> tuple[LogPipe, LogCollector, FakeTransport]:
    collector = LogCollector()
    collector.reset(limit)
    transport = FakeTransport()
    log_pipe = LogPipe("stdout", collector)
    log_pipe.connection_made(transport)
    return log_pipe, collector, transport


async def test_lines_under_the_limit_are_kept_without_pausing():
    log_pipe, collector, transport = pipe(1000)
    log_pipe.data_received(b"one\ntwo\n" + MARKER + b"\n")
    assert [line.split(" ", 1)[1] for line in collector.lines] == ["stdout: one", "stdout: two"]
    assert collector.markers == 1 and transport.paused == 0


async def test_a_flood_past_the_limit_is_skimmed_and_throttled():
    log_pipe, collector, transport = pipe(100)
    log_pipe.data_received(b"y" * 500 + b"\n" + b"z" * 50 + b"\n")
    assert collector.truncated and collector.lines == []
    for _ in range(3):
        log_pipe.data_received(b"y" * 500 + b"\n")
    assert transport.paused == 3 and transport.resumed == 0  # no split, a pause each
    await asyncio.sleep(FLOOD_PAUSE * 3)
    assert transport.resumed == 3
    # The marker still ends the activation, even split across two reads.
    log_pipe.data_received(b"y" * 100 + b"\n" + MARKER[:10])
    assert collector.markers == 0
    log_pipe.data_received(MARKER[10:] + b"\nnext")
    assert collector.markers == 1
    assert log_pipe.partial == b"next"  # what follows belongs to the next activation
    assert collector.take()[-1].endswith("exceeds the limit of 100 bytes.")


async def test_a_closed_stream_is_not_resumed():
    log_pipe, _, transport = pipe(10)
    log_pipe.data_received(b"x" * 100 + b"\n")
    log_pipe.data_received(b"x" * 100 + b"\n")
    transport.closed = True
    await asyncio.sleep(FLOOD_PAUSE * 2)
    assert transport.paused == 1 and transport.resumed == 0


def test_reads_real_pipes_on_uvloop():
    """The server runs on uvloop, whose transports are not asyncio's classes."""

    async def scenario() -> LogCollector:
        collector = LogCollector()
        collector.reset(10)
        read_fd, write_fd = os.pipe()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_read_pipe(
            lambda: LogPipe("stdout", collector), os.fdopen(read_fd, "rb", buffering=0)
        )
        os.write(write_fd, b"hello\n" + b"y" * 100 + b"\n")  # over the limit: skimmed
        await asyncio.sleep(0.05)
        os.write(write_fd, MARKER + b"\n")
        for _ in range(100):  # the marker arrives after the flood pause at most
            if collector.markers:
                break
            await asyncio.sleep(0.01)
        os.close(write_fd)
        transport.close()
        return collector

    collector = uvloop.run(scenario())
    assert collector.lines[0].endswith("stdout: hello")
    assert collector.truncated and collector.markers == 1


# -- the control socket against a real sandbox: whatever the function writes to fd 3 ----

RESULT_MAX = 64 * 1024


@pytest.fixture
async def sandbox(tmp_path, server_umask):
    settings = Settings(data_dir=tmp_path, stem_cells=1, limits=Limits(result_max=RESULT_MAX))
    box = LocalSandbox(settings, RuntimeTable(discover(None)))
    await box.start()
    yield box
    await box.stop()


async def loaded(sandbox: LocalSandbox, body: str) -> LocalInstance:
    """An instance whose ``main(args)`` runs ``body`` (with os, struct, threading, time)."""
    source = "import os, struct, threading, time\ndef main(args):\n" + "".join(
        f"    {line}\n" for line in body.strip().splitlines()
    )
    instance = await sandbox.spawn(sandbox.runtimes.spawner.kind)
    assert isinstance(instance, LocalInstance)
    outcome = await instance.init(Code(source=source), 10, 64 * 1024)
    assert outcome.ok, outcome
    return instance


async def gone(instance: LocalInstance) -> None:
    assert not instance.alive
    await asyncio.wait_for(asyncio.shield(instance.exited), 5)  # the process too


async def test_a_malformed_frame_is_the_activations_error_and_stops_the_instance(sandbox):
    # The pause: the launcher's own reply comes apart from the function's frame.
    instance = await loaded(sandbox, "os.write(3, b'\\0\\0\\0\\x02[]')\ntime.sleep(0.2)\nreturn {}")
    outcome = await instance.run({}, {}, 10, 64 * 1024)
    assert (outcome.ok, outcome.kind) == (False, "crash")
    assert "broke the runtime protocol (a reply that is a JSON array" in outcome.error
    await gone(instance)


async def test_a_second_frame_stops_the_instance(sandbox):
    frame = HEADER.pack(13) + b'{"result":{}}'
    instance = await loaded(sandbox, f"os.write(3, {frame!r})\nreturn {{'real': 1}}")
    outcome = await instance.run({}, {}, 10, 64 * 1024)
    # The function's own frame is taken as the reply; the launcher's is one too many.
    assert not outcome.ok and "broke the runtime protocol" in outcome.error, outcome
    await gone(instance)


async def test_a_frame_written_between_activations_stops_the_idle_instance(sandbox):
    frame = HEADER.pack(13) + b'{"result":{}}'
    body = f"threading.Timer(0.3, os.write, (3, {frame!r})).start()\nreturn {{'ok': 1}}"
    instance = await loaded(sandbox, body)
    outcome = await instance.run({}, {}, 10, 64 * 1024)
    assert outcome.ok and outcome.result == {"ok": 1}
    await asyncio.wait_for(asyncio.shield(instance.exited), 5)
    assert "no reply was due" in str(instance.channel.violation)
    later = await instance.run({}, {}, 10, 64 * 1024)  # were it handed out again
    assert not later.ok and "no reply was due" in later.error


async def test_a_truncated_frame_ends_in_a_crash_not_an_exception(sandbox):
    instance = await loaded(sandbox, "os.write(3, struct.pack('>I', 100) + b'{\"res')\nos._exit(0)")
    outcome = await instance.run({}, {}, 10, 64 * 1024)
    assert (outcome.ok, outcome.kind) == (False, "crash")
    assert "exited unexpectedly" in outcome.error
    await gone(instance)


async def test_a_length_word_past_the_limit_is_refused_before_the_body(sandbox):
    body = "os.write(3, struct.pack('>I', 0x7fffffff))\ntime.sleep(30)\nreturn {}"
    instance = await loaded(sandbox, body)
    began = time.monotonic()
    outcome = await instance.run({}, {}, 30, 64 * 1024)
    assert time.monotonic() - began < 5  # not the timeout: refused from the header
    assert (outcome.ok, outcome.kind) == (False, "crash")
    limit = f"{0x7FFFFFFF - 11} > {RESULT_MAX} bytes"
    assert f"exceeded the allowed length: {limit}" in outcome.error
    await gone(instance)


async def test_a_result_at_the_limit_passes_and_one_byte_more_is_refused(sandbox):
    instance = await loaded(sandbox, "return {'x': 'a' * args['n']}")
    at_limit = RESULT_MAX - len('{"x":""}')
    outcome = await instance.run({"n": at_limit}, {}, 10, 64 * 1024)
    assert outcome.ok and outcome.size == RESULT_MAX and len(outcome.result["x"]) == at_limit
    assert instance.alive  # reused as usual
    outcome = await instance.run({"n": at_limit + 1}, {}, 10, 64 * 1024)
    assert (outcome.ok, outcome.size) == (False, RESULT_MAX + 1)
    assert f"exceeded the allowed length: {RESULT_MAX + 1} > {RESULT_MAX}" in outcome.error
    await gone(instance)


async def test_an_init_reply_past_its_limit_fails_the_init(sandbox):
    instance = await sandbox.spawn(sandbox.runtimes.spawner.kind)
    source = f"raise ValueError('x' * {INIT_REPLY_MAX})\n"
    outcome = await instance.init(Code(source=source), 10, 64 * 1024)
    assert (outcome.ok, outcome.kind) == (False, "init")
    assert f"exceeds the limit of {INIT_REPLY_MAX} bytes" in outcome.error
    await gone(instance)
