"""An HTTP request as a function's arguments, the way OpenWhisk web actions see it.

Every web invocation gets ``__ow_method``, ``__ow_headers`` and ``__ow_path``, and
DigitalOcean's ``http`` object for ``main(event, context)`` handlers. Without
``raw-http``, query and JSON or form body parameters become top-level arguments
(the body wins); with it, the function gets ``__ow_query`` and ``__ow_body`` instead.
Bodies that are not text travel base64-encoded.
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from wisp import codec
from wisp.errors import BadRequest, PayloadTooLarge

RESERVED_PREFIX = "__ow_"
FORM = "application/x-www-form-urlencoded"
_TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "application/x-www-form-urlencoded",
        "application/graphql",
        "application/yaml",
        "application/x-yaml",
    }
)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_text(content_type: str | None) -> bool:
    """Whether a body of this type is text (sent as is) rather than binary (base64)."""
    kind = media_type(content_type)
    return (
        kind.startswith("text/")
        or kind in _TEXT_TYPES
        or kind.endswith("+json")
        or kind.endswith("+xml")
    )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refusing more than ``max_bytes``; held once (no list of chunks to join)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"the request body is {int(declared)} bytes, over the limit of {max_bytes} bytes"
        )
    body = bytearray()
    async for chunk in request.stream():
        if len(body) + len(chunk) > max_bytes:
            raise PayloadTooLarge(f"the request body is over the limit of {max_bytes} bytes")
        body += chunk
    return bytes(body)


@dataclass
class EncodedBody:
    text: str  # the body as text, or base64 when binary
    base64: bool


def encode_body(body: bytes, content_type: str | None) -> EncodedBody:
    if is_text(content_type) or (not content_type and body.isascii()):
        try:
            return EncodedBody(body.decode(), False)
        except UnicodeDecodeError:
            pass
    return EncodedBody(base64.b64encode(body).decode(), True)


def request_arguments(
    request: Request,
    body: bytes,
    *,
    raw: bool,
    path: str,
    final: Collection[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The arguments a web invocation passes (before the function's bound parameters).

    ``path`` is what follows the function in the URL (``__ow_path``); ``final`` names
    the function's bound parameters, which a caller may not set; ``extra`` holds
    arguments the platform adds (route path parameters, ``__ow_user``, claims).
    """
    headers = {name: value for name, value in request.headers.items()}
    content_type = request.headers.get("content-type")
    encoded = encode_body(body, content_type) if body else EncodedBody("", False)
    query = request.url.query
    args: dict[str, Any] = {}
    if not raw:
        args.update(_refuse_reserved(parse_qsl(query, keep_blank_values=True)))
        args.update(_body_parameters(body, content_type, encoded))
        for key in args:
            if key in final:
                raise BadRequest(
                    f"the request may not set the parameter {key!r}: it is bound on the "
                    "function and final"
                )
    if extra:
        args.update(extra)
    args["__ow_method"] = request.method.lower()
    args["__ow_headers"] = headers
    args["__ow_path"] = path
    if raw:
        args["__ow_query"] = query
        args["__ow_body"] = encoded.text
    args["http"] = {
        "method": request.method,
        "path": path,
        "headers": headers,
        "queryString": query,
        "body": encoded.text,
        "isBase64Encoded": encoded.base64,
    }
    return args


def _body_parameters(body: bytes, content_type: str | None, encoded: EncodedBody) -> dict[str, Any]:
    if not body:
        return {}
    kind = media_type(content_type)
    if kind == "application/json" or kind.endswith("+json"):
        try:
            doc = codec.loads(body)
        except ValueError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None
        if isinstance(doc, dict):
            return _refuse_reserved(doc.items())
        # Arrays and scalars cannot be merged into the arguments: OpenWhisk hands
        # them over whole.
        return {"__ow_body": encoded.text}
    if kind == FORM:
        return _refuse_reserved(parse_qsl(encoded.text, keep_blank_values=True))
    return {"__ow_body": encoded.text}


def _refuse_reserved(pairs: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """The caller's parameters as a dict; 400 when one is named like a platform one."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key.startswith(RESERVED_PREFIX):
            raise BadRequest(
                f"the request may not set the parameter {key!r}: names starting with "
                f"{RESERVED_PREFIX!r} are reserved for the platform"
            )
        out[key] = value
    return out
