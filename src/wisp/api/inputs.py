"""Reading what a request carries: query flags, list paging, and JSON bodies.

Every bad value becomes a 400 that names the parameter; oversize bodies a 413.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from wisp import codec
from wisp.errors import BadRequest, PayloadTooLarge

LIST_LIMIT_DEFAULT = 30
LIST_LIMIT_MAX = 200
# Integer query parameters end up as SQL parameters: past a signed 64-bit integer
# the database driver refuses them, so they are refused here as bad input.
QUERY_INT_MAX = 2**63 - 1
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
}


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadRequest(f"query parameter {name!r} must be true or false (got {raw!r})")


def query_int(
    request: Request, name: str, default: int | None, low: int, high: int = QUERY_INT_MAX
) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or value > high:
        raise BadRequest(
            f"query parameter {name!r} must be an integer between {low} and {high} (got {raw!r})"
        )
    return value


def paging(request: Request) -> tuple[int, int]:
    """(limit, skip). As in OpenWhisk, limit=0 means the maximum."""
    limit = query_int(request, "limit", LIST_LIMIT_DEFAULT, 0, LIST_LIMIT_MAX)
    skip = query_int(request, "skip", 0, 0)
    assert limit is not None and skip is not None
    return limit or LIST_LIMIT_MAX, skip


async def read_body(request: Request, max_bytes: int) -> bytearray:
    """The body in one buffer, refusing more than ``max_bytes`` as soon as it is known.

    A declared Content-Length over the limit is refused before a byte is read (a
    client waiting on ``Expect: 100-continue`` never sends the body); a body without
    one (chunked) is counted as it arrives and refused when a chunk crosses the
    limit, without waiting for the rest. The server discards what still comes.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise BadRequest(f"the Content-Length header must be a number (got {declared!r})")
        if int(declared) > max_bytes:
            raise PayloadTooLarge(
                f"the request body is {int(declared)} bytes, over the limit of {max_bytes} bytes"
            )
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > max_bytes:
            raise PayloadTooLarge(
                f"the request body is over the limit of {max_bytes} bytes "
                f"(refused after {len(body) + len(chunk)} bytes)"
            )
        body += chunk
    return body


def parse_object(raw: bytes | bytearray) -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}``."""
    if not raw.strip():
        return {}
    try:
        doc = codec.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 JSON") from None
    except ValueError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        kind = "null" if doc is None else _JSON_TYPES.get(type(doc), type(doc).__name__)
        raise BadRequest(f"the request body must be a JSON object, not {kind}")
    return doc


async def json_object(request: Request, max_bytes: int) -> dict[str, Any]:
    return parse_object(await read_body(request, max_bytes))
