"""The HTTP protocol's transport: a response's header block and body in one write."""

from __future__ import annotations

import asyncio

from wisp.api.http import HOLD_MAX, HeldTransport


class Recorder(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 0


async def test_headers_and_body_go_out_in_one_write():
    real = Recorder()
    held = HeldTransport(real)
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    assert real.writes == []
    held.write(b"{}")
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left
    assert len(real.writes) == 1


async def test_a_lone_write_goes_out_on_the_next_loop_turn():
    real = Recorder()
    held = HeldTransport(real)
    held.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert held.get_write_buffer_size() > 0
    await asyncio.sleep(0)
    assert real.writes == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]


async def test_large_writes_are_not_held():
    real = Recorder()
    held = HeldTransport(real)
    big = b"x" * (HOLD_MAX + 1)
    held.write(big)
    assert real.writes == [big]


async def test_close_sends_what_is_held_first():
    real = Recorder()
    held = HeldTransport(real)
    held.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    held.close()
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"] and real.closed
    assert held.is_closing()
