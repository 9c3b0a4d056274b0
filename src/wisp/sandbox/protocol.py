"""The worker protocol: 4-byte big-endian length, then a JSON document."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

from wisp import codec

HEADER = struct.Struct(">I")
MAX_MESSAGE = 256 * 1024 * 1024


def encode(message: dict[str, Any]) -> bytes:
    body = codec.dumps(message)
    return HEADER.pack(len(body)) + body


async def read_raw(reader: asyncio.StreamReader) -> bytes:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes exceeds the protocol limit")
    return await reader.readexactly(size)
