"""Platform logs: text or JSON lines on stderr, each carrying the request it serves.

The request id lives in a context variable set when a request comes in: asyncio
tasks and the thread pool copy the context, so every line logged while handling
a request (and by the invocation it started) carries its id without passing it
around.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import time
from contextvars import ContextVar
from random import getrandbits
from urllib.parse import quote

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("wisp_request_id", default=None)
REQUEST_ID_HEADER = "x-request-id"
# A caller's id is kept when it is short and plain (it lands in logs and headers).
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# What a text access line keeps of a path that has spaces or control characters in it.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"
# Attributes every LogRecord has; anything else came from ``extra=`` and is context.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def new_request_id() -> str:
    return f"{getrandbits(80):020x}"  # unique, not secret (see tracing.new_span_id)


def request_id_from(value: str | None) -> str:
    """The caller's id when it is sane, else a new one."""
    if value is not None and _SANE_ID.fullmatch(value):
        return value
    return new_request_id()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, then context fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id is not None:
            doc["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """The classic line, with ``[request id]`` when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        return f"{line} [{request_id}]" if request_id is not None else line


class AccessLog:
    """One line per HTTP request on stderr, in the platform logs' format, off the logging
    module.

    Through ``logging`` an access line cost about a fifth of the server's CPU per
    invoke (a LogRecord, the formatter, a write and flush per line). Here a JSON line
    is a dict and orjson, a text line one f-string in ``TextFormatter``'s shape; the
    lines of one event-loop turn go out in one write, after the responses they
    describe. Whoever stops the loop calls ``flush`` last, so none is left behind.
    """

    def __init__(self, log_format: str = "json", fd: int = 2) -> None:
        self.fd = fd
        self._render = self._json if log_format == "json" else self._text
        self._pending: list[bytes] = []
        self._second = -1
        self._stamp = ""

    def line(self, method: str, path: str, status: int, started: float, request_id: str) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        self._pending.append(self._render(method, path, status, started, request_id))

    def _json(self, method: str, path: str, status: int, started: float, request_id: str) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:  # one strftime per second, not per line
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        doc = {
            "ts": f"{self._stamp}.{int((now - second) * 1000):03d}Z",
            "level": "info",
            "logger": "wisp.access",
            "message": f"{method} {path} {status}",
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        return orjson.dumps(doc, option=orjson.OPT_APPEND_NEWLINE)

    def _text(self, method: str, path: str, status: int, started: float, request_id: str) -> bytes:
        duration = (time.perf_counter() - started) * 1000
        now = time.time()
        second = int(now)
        if second != self._second:  # local time, as logging's asctime
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        if " " in path or not path.isprintable():  # one line, space-separated fields
            path = quote(path, safe=_PATH_SAFE)
        return (
            f"{self._stamp},{int((now - second) * 1000):03d} wisp.access INFO "
            f"{method} {path} {status} {duration:.2f}ms [{request_id}]\n"
        ).encode("utf-8", "backslashreplace")

    def flush(self) -> None:
        if not self._pending:
            return
        data = memoryview(b"".join(self._pending))
        self._pending.clear()
        try:
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError:
            pass  # stderr gone: nothing to tell it


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Route every logger (uvicorn's too) to one stderr handler in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
