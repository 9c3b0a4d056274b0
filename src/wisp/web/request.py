"""An HTTP request as a function's arguments, the way OpenWhisk web actions see it.

Every web invocation gets ``__ow_method``, ``__ow_headers`` and ``__ow_path``, and
DigitalOcean's ``http`` object for ``main(event, context)`` handlers. Without
``raw-http``, query and JSON or form body parameters become top-level arguments
(the body wins); with it, the function gets ``__ow_query`` and ``__ow_body`` instead.
Bodies that are not text travel base64-encoded.
"""

from __future__ import annotations

import binascii
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from wisp import codec
from wisp.errors import BadRequest

RESERVED_PREFIX = "__ow_"
_ENCODE_PIECE = 3 * 64 * 1024  # bytes (whole base64 quanta)
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


@dataclass
class EncodedBody:
    text: str  # the body as text, or base64 when binary
    base64: bool


def encode_body(body: bytearray, content_type: str | None) -> EncodedBody:
    """The body as text, or base64 when it is binary; empties ``body``.

    The bytes are released as soon as their text exists, so a large body is never
    held as bytes and text (let alone bytes, base64 bytes and text) at once.
    """
    if is_text(content_type) or (not content_type and body.isascii()):
        try:
            text = body.decode()
        except UnicodeDecodeError:
            pass
        else:
            body.clear()
            return EncodedBody(text, False)
    return EncodedBody(_base64_text(body), True)


def _base64_text(body: bytearray) -> str:
    """``body`` as base64 text; empties ``body``.

    Encoded a piece at a time into one buffer of the final size: encoding it whole
    makes the encoder reserve twice the body first (3x the body at its peak).
    """
    out = bytearray((len(body) + 2) // 3 * 4)
    with memoryview(body) as view:
        for start in range(0, len(body), _ENCODE_PIECE):
            piece = binascii.b2a_base64(view[start : start + _ENCODE_PIECE], newline=False)
            at = start // 3 * 4
            out[at : at + len(piece)] = piece
    body.clear()
    return out.decode("ascii")


def request_arguments(
    request: Request,
    body: bytearray,
    *,
    raw: bool,
    path: str,
    final: Collection[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The arguments a web invocation passes (before the function's bound parameters).

    ``body`` is consumed: it is empty afterwards (see ``encode_body``). ``path`` is
    what follows the function in the URL (``__ow_path``); ``final`` names the
    function's bound parameters, which a caller may not set; ``extra`` holds
    arguments the platform adds (route path parameters, ``__ow_user``, claims).
    """
    scope = request.scope
    # Straight from the ASGI scope: Starlette's Headers and URL objects cost more
    # than the rest of this function (the last of a repeated header wins, as there).
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    content_type = headers.get("content-type")
    kind = media_type(content_type)
    query: str = scope["query_string"].decode("latin-1")
    method: str = scope["method"]
    # A JSON body is parsed from its bytes, before encode_body releases them.
    doc = _parse_json(body) if body and not raw and _is_json(kind) else _NOT_JSON
    encoded = encode_body(body, content_type) if body else EncodedBody("", False)
    args: dict[str, Any] = {}
    if not raw:
        if query:
            args.update(_refuse_reserved(parse_qsl(query, keep_blank_values=True)))
        if encoded.text:
            args.update(_body_parameters(kind, doc, encoded))
        for key in args:
            if key in final:
                raise BadRequest(
                    f"the request may not set the parameter {key!r}: it is bound on the "
                    "function and final"
                )
    if extra:
        args.update(extra)
    args["__ow_method"] = method.lower()
    args["__ow_headers"] = headers
    args["__ow_path"] = path
    if raw:
        args["__ow_query"] = query
        args["__ow_body"] = encoded.text
    args["http"] = {
        "method": method,
        "path": path,
        "headers": headers,
        "queryString": query,
        "body": encoded.text,
        "isBase64Encoded": encoded.base64,
    }
    return args


_NOT_JSON = object()


def _is_json(kind: str) -> bool:
    return kind == "application/json" or kind.endswith("+json")


def _parse_json(body: bytearray) -> Any:
    try:
        return codec.loads(body)
    except ValueError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None


def _body_parameters(kind: str, doc: Any, encoded: EncodedBody) -> dict[str, Any]:
    if isinstance(doc, dict):
        return _refuse_reserved(doc.items())
    if doc is _NOT_JSON and kind == FORM:
        return _refuse_reserved(parse_qsl(encoded.text, keep_blank_values=True))
    # JSON arrays and scalars cannot be merged into the arguments: OpenWhisk hands
    # them over whole, as it does any other body.
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
