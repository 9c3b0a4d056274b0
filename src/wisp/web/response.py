"""A web invocation's result as the HTTP response, by the URL's extension.

``.http`` (the default) reads ``{statusCode, headers, body}``: 200 by default, 204
when there is no body; string bodies are text/html unless a content type says
otherwise, and base64 when that type is binary; other bodies are JSON. ``.json``,
``.html``, ``.text`` and ``.svg`` answer with (a projection of) the result.
A failed activation is a 502 in the error envelope: never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from wisp import codec
from wisp.errors import BadRequest
from wisp.models import STATUS_TEXT, SUCCESS, Activation
from wisp.web.request import is_text

EXTENSIONS = ("http", "json", "html", "text", "svg")
# The property each extension answers with when the URL names no projection.
_DEFAULT_PROJECTION = {"http": [], "json": [], "html": ["html"], "text": ["text"], "svg": ["svg"]}
_MEDIA = {
    "html": "text/html; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "svg": "image/svg+xml",
}
# Bodies from this many characters are sent in pieces, each made as it is sent.
STREAM_FROM = 256 * 1024
PIECE = 256 * 1024  # characters per piece (a multiple of 4: whole base64 quanta)
# Framing is the server's business: a function's own values would contradict it.
_FRAMING = frozenset({"content-length", "transfer-encoding", "connection"})


class BadResult(Exception):
    """The function succeeded but its result cannot be an HTTP response (a 502)."""


class ExtraHeaders:
    """What the platform adds to a web response besides the function's own headers."""

    def __init__(
        self, fixed: Mapping[str, str] | None = None, defaults: Mapping[str, str] | None = None
    ) -> None:
        self.fixed = dict(fixed or {})  # replace the function's (the activation id)
        self.defaults = dict(defaults or {})  # only where the function set none (CORS)

    def apply(self, own: dict[str, str]) -> dict[str, str]:
        if own:
            taken = {name.lower(): name for name in own}
            for name, value in self.defaults.items():
                if name.lower() not in taken:
                    own[name] = value
            for name, value in self.fixed.items():
                previous = taken.get(name.lower())
                if previous is not None:
                    del own[previous]
                own[name] = value
            return own
        return {**self.defaults, **self.fixed}


class PiecewiseResponse(Response):
    """A body of known size sent a piece at a time, each piece made when it is sent.

    The whole body never exists as one bytes object; the server's send waits while
    the client is slow to read, so pieces do not pile up in its buffers either.
    """

    def __init__(
        self,
        size: int,
        pieces: Callable[[], Iterator[bytes]],
        status_code: int,
        headers: dict[str, str],
    ) -> None:
        self.pieces = pieces
        headers["content-length"] = str(size)
        super().__init__(None, status_code, headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers})
        for piece in self.pieces():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def web_response(
    record: Activation, extension: str, projection: list[str], extra: ExtraHeaders | None = None
) -> Response:
    extra = extra or ExtraHeaders()
    if record.status_code != SUCCESS:
        return failure(record, extra)
    try:
        if extension == "http":
            return http_response(record.result, extra)
        value = project(record.result, projection or _DEFAULT_PROJECTION[extension])
        if extension == "json":
            headers = extra.apply({"content-type": "application/json"})
            return Response(codec.dumps(value), headers=headers)
        text = value if isinstance(value, str) else codec.dumps(value).decode()
        return _text(text, 200, extra.apply({"content-type": _MEDIA[extension]}))
    except BadResult as exc:
        return _error(502, str(exc), "bad_result", record.activation_id, extra)


def failure(record: Activation, extra: ExtraHeaders | None = None) -> Response:
    result = record.result
    error = result.get("error") if isinstance(result, dict) else None
    message = error if isinstance(error, str) and error else STATUS_TEXT[record.status_code]
    code = STATUS_TEXT[record.status_code].replace(" ", "_")
    return _error(502, message, code, record.activation_id, extra or ExtraHeaders())


def _error(
    status: int, message: str, code: str, activation_id: str, extra: ExtraHeaders
) -> Response:
    doc = {"error": message, "code": code, "activationId": activation_id}
    return JSONResponse(doc, status_code=status, headers=extra.apply({}))


def project(result: Any, path: list[str]) -> Any:
    value = result
    for i, name in enumerate(path):
        if not isinstance(value, dict) or name not in value:
            where = ".".join(path[: i + 1])
            raise BadRequest(f"the function's result has no property {where!r}")
        value = value[name]
    return value


def http_response(result: Any, extra: ExtraHeaders | None = None) -> Response:
    extra = extra or ExtraHeaders()
    if not isinstance(result, dict):
        raise BadResult("the function's result must be an object with statusCode, headers, body")
    headers = _headers(result.get("headers"))
    status = _status(result.get("statusCode"))
    body = result.get("body")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if body is None or body == "":
        return Response(b"", 204 if status is None else status, headers=extra.apply(headers))
    status = 200 if status is None else status
    if isinstance(body, str):
        if content_type is None:
            headers["content-type"] = "text/html; charset=utf-8"
            return _text(body, status, extra.apply(headers))
        if is_text(content_type):
            return _text(body, status, extra.apply(headers))
        return _binary(body, content_type, status, extra.apply(headers))
    if content_type is None:
        headers["content-type"] = "application/json"
    return Response(codec.dumps(body), status, headers=extra.apply(headers))


def _text(body: str, status: int, headers: dict[str, str]) -> Response:
    if len(body) < STREAM_FROM or not body.isascii():
        return Response(body.encode(), status, headers=headers)
    # ASCII: as many bytes as characters, so the length is known before encoding.
    return PiecewiseResponse(
        len(body),
        lambda: (body[i : i + PIECE].encode("ascii") for i in range(0, len(body), PIECE)),
        status,
        headers,
    )


def _headers(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadResult("the function's result.headers must be an object")
    out: dict[str, str] = {}
    for name, value in raw.items():
        text = value if isinstance(value, str) else codec.dumps(value).decode()
        if "\n" in name or "\r" in name or "\n" in text or "\r" in text:
            raise BadResult(f"the function's result.headers.{name} holds a line break")
        if name.lower() not in _FRAMING:
            out[name] = text
    return out


def _status(raw: Any) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw.isdigit():
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or not 100 <= raw <= 599:
        raise BadResult(f"the function's result.statusCode must be 100-599 (got {raw!r})")
    return raw


def _binary(body: str, content_type: str, status: int, headers: dict[str, str]) -> Response:
    """A base64 body decoded: whole when small, else a piece at a time as it is sent.

    The pieces are checked (and counted) before the status line goes out, so a body
    that is not base64 is still a clean 502 rather than a response cut short.
    """
    if len(body) < STREAM_FROM:
        try:
            return Response(base64.b64decode(body, validate=True), status, headers=headers)
        except (binascii.Error, ValueError):
            raise _not_base64(content_type) from None
    try:
        size = sum(len(piece) for piece in _decoded(body))
    except (binascii.Error, ValueError):
        raise _not_base64(content_type) from None
    return PiecewiseResponse(size, lambda: _decoded(body), status, headers)


def _decoded(body: str) -> Iterator[bytes]:
    last = len(body) - PIECE
    for i in range(0, len(body), PIECE):
        piece = body[i : i + PIECE]
        if i < last and piece.endswith("="):
            raise ValueError("padding before the end")  # the whole string would refuse it
        yield binascii.a2b_base64(piece, strict_mode=True)


def _not_base64(content_type: str) -> BadResult:
    return BadResult(
        f"the function's body must be base64 for the binary content type {content_type!r}"
    )
