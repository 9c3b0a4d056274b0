"""Platform log lines: JSON objects with the request id, and request id sanity."""

from __future__ import annotations

import json
import logging
import re
import sys

import pytest

from wisp.observability.logs import (
    REQUEST_ID,
    JsonFormatter,
    TextFormatter,
    new_request_id,
    request_id_from,
)


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {
            "name": "wisp.test",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": message,
            "args": args,
        }
    )
    rec.__dict__.update(extra)
    return rec


def test_json_line_has_the_fixed_fields_and_context() -> None:
    token = REQUEST_ID.set("req-1")
    try:
        line = JsonFormatter().format(record("hello %s", "world", namespace="guest", n=3))
    finally:
        REQUEST_ID.reset(token)
    doc = json.loads(line)
    assert "\n" not in line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc.pop("ts"))
    assert doc == {
        "level": "warning",
        "logger": "wisp.test",
        "message": "hello world",
        "request_id": "req-1",
        "namespace": "guest",
        "n": 3,
    }


def test_json_line_outside_a_request_has_no_id_and_keeps_tracebacks_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed")
        rec.exc_info = sys.exc_info()
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    doc = json.loads(line)
    assert "request_id" not in doc
    assert "ValueError: boom" in doc["exc"]


def test_an_explicit_request_id_wins() -> None:
    doc = json.loads(JsonFormatter().format(record("x", request_id="given")))
    assert doc["request_id"] == "given"


def test_text_line_ends_with_the_request_id() -> None:
    token = REQUEST_ID.set("abc")
    try:
        line = TextFormatter().format(record("hello %s", "you"))
    finally:
        REQUEST_ID.reset(token)
    assert line.endswith("wisp.test WARNING hello you [abc]")
    assert not TextFormatter().format(record("plain")).endswith("]")


@pytest.mark.parametrize("value", ["abc-123", "0af7651916cd43dd", "a.b_c:d@e/f+g=h", "x" * 128])
def test_sane_request_ids_are_kept(value: str) -> None:
    assert request_id_from(value) == value


@pytest.mark.parametrize("value", [None, "", "x" * 129, "has space", "new\nline", "é", "<script>"])
def test_other_request_ids_are_replaced(value: str | None) -> None:
    replaced = request_id_from(value)
    assert replaced != value and re.fullmatch(r"[0-9a-f]{20}", replaced)


def test_new_ids_differ() -> None:
    assert len({new_request_id() for _ in range(100)}) == 100
