"""The server's end of the worker protocol and the per-activation log collector."""

from __future__ import annotations

import asyncio

import pytest

from wisp.sandbox.instance import MARKER, LogCollector, LogPipe
from wisp.sandbox.protocol import HEADER, MAX_MESSAGE, QUIET, ControlChannel


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def channel() -> tuple[ControlChannel, FakeTransport]:
    transport = FakeTransport()
    chan = ControlChannel()
    chan.connection_made(transport)
    return chan, transport


def frame(body: bytes, flags: int = 0) -> bytes:
    return HEADER.pack(len(body) | flags) + body


async def test_a_frame_split_across_reads_is_delivered_whole():
    chan, _ = channel()
    reply = chan.next_frame()
    data = frame(b'{"result":{}}')
    for i in range(len(data)):
        chan.data_received(data[i : i + 1])
    assert await reply == (b'{"result":{}}', False)


async def test_quiet_bit_is_reported_and_not_part_of_the_size():
    chan, _ = channel()
    chan.data_received(frame(b'{"ok":true}', QUIET) + frame(b'{"ok":false}'))
    assert await chan.next_frame() == (b'{"ok":true}', True)
    assert await chan.next_frame() == (b'{"ok":false}', False)


async def test_send_writes_one_length_prefixed_frame():
    chan, transport = channel()
    chan.send({"op": "run"})
    assert transport.written == [frame(b'{"op":"run"}')]


async def test_oversize_frame_fails_the_waiter_and_closes():
    chan, transport = channel()
    reply = chan.next_frame()
    chan.data_received(HEADER.pack(MAX_MESSAGE + 1))
    with pytest.raises(ValueError, match="exceeds the protocol limit"):
        await reply
    assert transport.closed


async def test_lost_connection_fails_the_waiter_and_later_sends():
    chan, _ = channel()
    reply = chan.next_frame()
    chan.connection_lost(None)
    with pytest.raises(ConnectionResetError):
        await reply
    with pytest.raises(ConnectionResetError):
        await chan.next_frame()
    with pytest.raises(ConnectionResetError):
        chan.send({"op": "run"})


async def test_marker_glued_to_a_last_line_without_newline_still_ends_the_logs():
    logs = LogCollector()
    logs.reset(1024)
    out, err = LogPipe("stdout", logs), LogPipe("stderr", logs)
    out.data_received(b"no newline" + MARKER + b"\n")
    err.data_received(MARKER + b"\n")
    await asyncio.wait_for(logs.wait_markers(5), 1)  # both came: no waiting
    lines = logs.take()
    assert len(lines) == 1 and lines[0].endswith(" stdout: no newline")


async def test_quiet_end_keeps_a_last_line_without_newline():
    logs = LogCollector()
    logs.reset(1024)
    out = LogPipe("stdout", logs)
    out.data_received(b"one\ntwo")
    logs.end_quietly()
    assert [line.split(" ", 1)[1] for line in logs.take()] == ["stdout: one", "stdout: two"]
    assert out.partial == b""


async def test_waiting_for_markers_gives_up_after_the_wait():
    logs = LogCollector()
    logs.reset(1024)
    LogPipe("stdout", logs).data_received(MARKER + b"\n")  # stderr's never comes
    loop = asyncio.get_running_loop()
    began = loop.time()
    await logs.wait_markers(0.05)
    assert 0.04 <= loop.time() - began < 1
