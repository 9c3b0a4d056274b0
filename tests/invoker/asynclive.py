"""Helpers for the live tests of asynchronous work (retries, dead letters, keys)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.live import LiveServer

ACTIONS = "/api/v1/namespaces/_/actions"
ACTIVATIONS = "/api/v1/namespaces/_/activations"
LETTERS = "/api/v1/namespaces/_/deadletters"
ECHO = "def main(args):\n    return args\n"


def annotation(record: dict[str, Any], key: str) -> Any:
    for item in record.get("annotations") or []:
        if item.get("key") == key:
            return item.get("value")
    return None


def wait_record(server: LiveServer, aid: str, seconds: float = 60) -> dict[str, Any]:
    """The activation record of ``aid`` once it is there."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, record = server.call("GET", f"{ACTIVATIONS}/{aid}")
        if status == 200:
            assert isinstance(record, dict)
            return record
        time.sleep(0.1)
    pytest.fail(f"no record of {aid} after {seconds}s:\n{server.output()[-3000:]}")
