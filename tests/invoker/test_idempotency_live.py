"""Idempotency keys with a real `wisp server`: 100 concurrent invokes with one key start
one activation, and the key holds across a restart."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.invoker.asynclive import ACTIONS, ACTIVATIONS, ECHO, wait_record
from tests.live import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path) as live:
        yield live


def test_one_idempotency_key_starts_one_activation(server: LiveServer) -> None:
    server.deploy("jobs/echo", ECHO)
    body = {"order": 42}

    def post(_: int) -> httpx.Response:
        with server.client() as http:
            return http.post(
                f"{ACTIONS}/jobs/echo", json=body, headers={"Idempotency-Key": "order-42"}
            )

    with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
        answers = list(pool.map(post, range(100)))
    assert {a.status_code for a in answers} == {202}
    ids = {a.json()["activationId"] for a in answers}
    assert len(ids) == 1
    [aid] = ids
    wait_record(server, aid)
    time.sleep(0.5)  # a second run, if there were one, would have a record by now
    _, listed = server.call("GET", f"{ACTIVATIONS}?name=jobs/echo")
    assert [r["activationId"] for r in listed] == [aid]

    # The key holds across a restart: same body, same id; another body, 422.
    assert server.stop() == 0
    server.start()
    with server.client() as http:
        same = http.post(
            f"{ACTIONS}/jobs/echo", json=body, headers={"Idempotency-Key": "order-42"}
        )
        other = http.post(
            f"{ACTIONS}/jobs/echo", json={"order": 43}, headers={"Idempotency-Key": "order-42"}
        )
    assert same.status_code == 202 and same.json()["activationId"] == aid
    assert other.status_code == 422
    _, listed = server.call("GET", f"{ACTIVATIONS}?name=jobs/echo")
    assert [r["activationId"] for r in listed] == [aid]
