"""JSON on the hot path: orjson where it can, the standard library where it cannot.

orjson is several times faster than ``json`` but refuses integers beyond 64 bits,
which JSON itself allows; those documents fall back to the standard library.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def canonical(value: Any) -> bytes:
    """One encoding per JSON value (keys sorted): equal documents, equal bytes."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def loads(data: bytes | bytearray | str) -> Any:
    """Parse strict JSON (no NaN/Infinity). Raises ValueError on bad input."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "64-bit" not in str(exc) and "integer" not in str(exc).lower():
            raise
    return json.loads(data, parse_constant=_no_constants)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
