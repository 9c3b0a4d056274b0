"""Platform logs: text or JSON lines on stderr, each carrying the request it serves.

The request id lives in a context variable set when a request comes in: asyncio
tasks and the thread pool copy the context, so every line logged while handling
a request (and by the invocation it started) carries its id without passing it
around.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from random import getrandbits

REQUEST_ID: ContextVar[str | None] = ContextVar("wisp_request_id", default=None)
REQUEST_ID_HEADER = "x-request-id"
# A caller's id is kept when it is short and plain (it lands in logs and headers).
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
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
