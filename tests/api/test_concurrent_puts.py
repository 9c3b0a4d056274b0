"""Versions are immutable: concurrent PUTs of one action, against a real server on
SQLite and on PostgreSQL, each get a version of their own, and every version holds
the code of the PUT that got it."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer
from wisp.models import DEFAULT_PACKAGE
from wisp.store.sql import SqlStore

PUTS = 12
PATH = "/api/v1/namespaces/_/actions/race?overwrite=true"


def code(i: int) -> str:
    return f"def main(args):\n    return {{'put': {i}}}\n"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_concurrent_puts_never_write_one_version_twice(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    env = {"WISP_STEM_CELLS": "1"}
    if backend == "postgresql":
        env["WISP_DATABASE_URL"] = request.getfixturevalue("empty_postgres_url")
    server = LiveServer(tmp_path, env=env)
    url = env.get("WISP_DATABASE_URL") or f"sqlite:///{server.data_dir / 'wisp.db'}"
    with server:
        server.deploy("race", code(-1))  # 0.0.1
        barrier = threading.Barrier(PUTS)

        def put(i: int) -> tuple[int, Any]:
            with server.client() as http:
                body = {"exec": {"kind": "python:default", "code": code(i)}}
                barrier.wait()  # all at once
                answer = http.put(PATH, json=body)
                return answer.status_code, answer.json()

        with ThreadPoolExecutor(PUTS) as pool:
            answers = list(pool.map(put, range(PUTS)))
    assert [status for status, _ in answers] == [200] * PUTS, answers
    versions = [body["version"] for _, body in answers]
    assert len(set(versions)) == PUTS, f"one version written twice: {sorted(versions)}"
    store = SqlStore(url)
    try:
        stored = store.list_action_versions("guest", DEFAULT_PACKAGE, "race")
        assert sorted(stored) == sorted(["0.0.1", *versions])
        for i, version in enumerate(versions):
            kept = store.get_action_version("guest", DEFAULT_PACKAGE, "race", version)
            assert kept is not None and kept.exec.code == code(i), version
        current = store.get_action("guest", DEFAULT_PACKAGE, "race")
        assert current is not None
        newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
        assert current.version == newest
    finally:
        store.close()
