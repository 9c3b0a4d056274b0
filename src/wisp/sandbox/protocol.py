"""The worker protocol: 4-byte big-endian length, then a JSON document.

A reply whose length has the ``QUIET`` bit set says that no end-of-activation
markers follow on stdout and stderr: the launcher saw that the server had already
read everything the activation wrote there.
"""

from __future__ import annotations

import asyncio
import struct
from collections import deque
from typing import Any, cast

from wisp import codec

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024
QUIET = 1 << 31
_SIZE = QUIET - 1


def encode(message: dict[str, Any]) -> bytes:
    body = codec.dumps(message)
    return HEADER.pack(len(body)) + body


class ControlChannel(asyncio.Protocol):
    """The server's end of an instance's control socket: one frame at a time.

    A protocol rather than a stream reader: a reply costs one callback, not two
    ``readexactly`` coroutines wrapped in a task by ``wait_for``.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._frames: deque[tuple[bytes, bool]] = deque()
        self._waiter: asyncio.Future[tuple[bytes, bool]] | None = None
        self._error: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        while len(buffer) >= HEADER.size:
            (word,) = HEADER.unpack_from(buffer)
            size = word & _SIZE
            if size > MAX_MESSAGE:
                self._fail(ValueError(f"message of {size} bytes exceeds the protocol limit"))
                return
            end = HEADER.size + size
            if len(buffer) < end:
                return
            self._frames.append((bytes(buffer[HEADER.size : end]), bool(word & QUIET)))
            del buffer[:end]
        self._deliver()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc if exc is not None else ConnectionResetError("the instance closed"))

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
        if self.transport is not None:
            self.transport.close()
        self._deliver()

    def _deliver(self) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._frames:
            waiter.set_result(self._frames.popleft())
        elif self._error is not None:
            waiter.set_exception(self._error)

    def send(self, message: dict[str, Any]) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the instance closed")
        self.transport.write(encode(message))

    def next_frame(self) -> asyncio.Future[tuple[bytes, bool]]:
        """A future for the next frame: ``(body, quiet)``, or the connection's error."""
        waiter: asyncio.Future[tuple[bytes, bool]] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._deliver()
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
