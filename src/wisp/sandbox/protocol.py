"""The worker protocol: 4-byte big-endian length, then a JSON document.

A reply whose length has the ``QUIET`` bit set says that no end-of-activation
markers follow on stdout and stderr: the launcher saw that the server had already
read everything the activation wrote there.

The server takes exactly one frame per request: the reply it asked for, up to a
limit set by the request. Everything else the sandboxed side can send is a
``ProtocolViolation``, seen as it arrives and never buffered: a length word past the
limit (refused from its header, before any of its body is read), a second frame or
stray bytes after the reply, anything at all while no request waits. The channel
then closes and its owner kills the instance; the server holds at most one frame
per instance, whatever the sandbox writes.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import Any, cast

from wisp import codec

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024  # what a launcher accepts from the server
QUIET = 1 << 31
_SIZE = QUIET - 1


def encode(message: dict[str, Any]) -> bytes:
    body = codec.dumps(message)
    return HEADER.pack(len(body)) + body


class ProtocolViolation(ValueError):
    """The sandboxed side broke the protocol. Never leaves the sandbox layer: the
    instance turns it into the activation's developer error."""


class ReplyTooLarge(ProtocolViolation):
    def __init__(self, size: int, limit: int, quiet: bool) -> None:
        super().__init__(f"a reply of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
        self.quiet = quiet


class ControlChannel(asyncio.Protocol):
    """The server's end of an instance's control socket: one request, one reply frame.

    A protocol rather than a stream reader: a reply costs one callback, not two
    ``readexactly`` coroutines wrapped in a task by ``wait_for``.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()  # the part of the awaited frame read so far
        self._size = -1  # the awaited frame's body size, once its header came
        self._quiet = False
        self._limit = 0
        self._waiter: asyncio.Future[tuple[bytes, bool]] | None = None
        self._error: Exception | None = None
        self.violation: ProtocolViolation | None = None
        self.on_violation: Callable[[ProtocolViolation], None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():  # none asked for, or no longer (a timeout)
            self._violate(ProtocolViolation("it wrote to the control socket when no reply was due"))
            return
        buffer = self._buffer
        if not buffer and len(data) >= HEADER.size:
            # The usual case: a whole reply in one read, parsed without the buffer.
            (word,) = HEADER.unpack_from(data)
            size = word & _SIZE
            if size == len(data) - HEADER.size and size <= self._limit:
                self._waiter = None
                waiter.set_result((data[HEADER.size :], bool(word & QUIET)))
                return
        buffer += data
        if self._size < 0:
            if len(buffer) < HEADER.size:
                return
            (word,) = HEADER.unpack_from(buffer)
            size, quiet = word & _SIZE, bool(word & QUIET)
            if size > self._limit:
                self._violate(ReplyTooLarge(size, self._limit, quiet))
                return
            self._size, self._quiet = size, quiet
        end = HEADER.size + self._size
        if len(buffer) < end:
            return
        if len(buffer) > end:
            self._violate(ProtocolViolation("it sent more than one frame for one request"))
            return
        body = bytes(buffer[HEADER.size :])
        buffer.clear()
        self._size = -1
        self._waiter = None
        waiter.set_result((body, self._quiet))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc if exc is not None else ConnectionResetError("the instance closed"))

    def _violate(self, violation: ProtocolViolation) -> None:
        """Stop reading at once: nothing more from this instance is wanted."""
        if self.violation is None:
            self.violation = violation
        self._buffer = bytearray()
        self._fail(violation)
        if self.on_violation is not None:
            self.on_violation(violation)

    def _fail(self, exc: Exception) -> None:
        if self._error is None:
            self._error = exc
        if self.transport is not None:
            self.transport.close()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._error)

    def request(self, message: dict[str, Any], limit: int) -> asyncio.Future[tuple[bytes, bool]]:
        """Send ``message``; a future for its reply ``(body, quiet)``, of at most
        ``limit`` bytes of body, or for the channel's error."""
        waiter: asyncio.Future[tuple[bytes, bool]] = asyncio.get_running_loop().create_future()
        if self._error is not None:
            waiter.set_exception(self._error)
            return waiter
        if self.transport is None or self.transport.is_closing():
            waiter.set_exception(ConnectionResetError("the instance closed"))
            return waiter
        self._waiter, self._limit = waiter, limit
        self.transport.write(encode(message))
        return waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
