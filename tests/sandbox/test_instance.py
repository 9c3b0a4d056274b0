"""The server's side of an instance: log streams under a flood."""

from __future__ import annotations

import asyncio
import os

import uvloop

from wisp.sandbox.instance import FLOOD_PAUSE, MARKER, LogCollector, LogPipe


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
