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
from typing import Any

from starlette.responses import JSONResponse, Response

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


class BadResult(Exception):
    """The function succeeded but its result cannot be an HTTP response (a 502)."""


def web_response(record: Activation, extension: str, projection: list[str]) -> Response:
    if record.status_code != SUCCESS:
        return failure(record)
    try:
        if extension == "http":
            return http_response(record.result)
        value = project(record.result, projection or _DEFAULT_PROJECTION[extension])
        if extension == "json":
            return Response(codec.dumps(value), media_type="application/json")
        text = value if isinstance(value, str) else codec.dumps(value).decode()
        return Response(text, headers={"content-type": _MEDIA[extension]})
    except BadResult as exc:
        return _error(502, str(exc), "bad_result", record.activation_id)


def failure(record: Activation) -> Response:
    result = record.result
    error = result.get("error") if isinstance(result, dict) else None
    message = error if isinstance(error, str) and error else STATUS_TEXT[record.status_code]
    code = STATUS_TEXT[record.status_code].replace(" ", "_")
    return _error(502, message, code, record.activation_id)


def _error(status: int, message: str, code: str, activation_id: str) -> Response:
    doc = {"error": message, "code": code, "activationId": activation_id}
    return JSONResponse(doc, status_code=status)


def project(result: Any, path: list[str]) -> Any:
    value = result
    for i, name in enumerate(path):
        if not isinstance(value, dict) or name not in value:
            where = ".".join(path[: i + 1])
            raise BadRequest(f"the function's result has no property {where!r}")
        value = value[name]
    return value


def http_response(result: Any) -> Response:
    if not isinstance(result, dict):
        raise BadResult("the function's result must be an object with statusCode, headers, body")
    headers = _headers(result.get("headers"))
    status = _status(result.get("statusCode"))
    body = result.get("body")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if body is None or body == "":
        return Response(b"", 204 if status is None else status, headers=headers)
    if isinstance(body, str):
        if content_type is None:
            headers["content-type"] = "text/html; charset=utf-8"
            data = body.encode()
        elif is_text(content_type):
            data = body.encode()
        else:
            data = _base64(body, content_type)
    else:
        data = codec.dumps(body)
        if content_type is None:
            headers["content-type"] = "application/json"
    return Response(data, 200 if status is None else status, headers=headers)


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


def _base64(body: str, content_type: str) -> bytes:
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise BadResult(
            f"the function's body must be base64 for the binary content type {content_type!r}"
        ) from None
