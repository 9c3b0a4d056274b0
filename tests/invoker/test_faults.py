"""The real invoker behind the API when the journal or the store fails: the caller
gets a 503 with Retry-After in the error envelope, and nothing is taken or lost."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from wisp.api import create_app
from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.invoker.local import LocalInvoker
from wisp.models import Activation
from wisp.namespaces import create_namespace
from wisp.platform import Platform
from wisp.server import build_platform
from wisp.store import writer as writer_module
from wisp.store.memory import MemoryStore

CODE = "def main(args):\n    return {'ok': True}\n"


class SwitchedStore(MemoryStore):
    """Activation writes fail while ``down``; everything else works."""

    down = False

    def insert_activations(self, records: list[Activation]) -> None:
        if self.down:
            raise PlatformError("database is unavailable")
        super().insert_activations(records)


@pytest.fixture
async def served(
    tmp_path: Any, server_umask: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Platform, SwitchedStore, httpx.AsyncClient]]:
    monkeypatch.setattr(writer_module, "RETRY_MAX", 0.05)
    settings = Settings(data_dir=tmp_path, stem_cells=1, namespace_concurrent=1, writer_backlog=3)
    store = SwitchedStore()
    _, auth = create_namespace(store, "guest")
    platform = build_platform(settings, store)
    await platform.start()
    uuid_, _, key = auth.partition(":")
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wisp.test", auth=(uuid_, key)
    ) as client:
        body = {"exec": {"kind": "python:default", "code": CODE}}
        answer = await client.put("/api/v1/namespaces/_/actions/fn", json=body)
        assert answer.status_code == 200, answer.text
        yield platform, store, client
    await platform.stop()


INVOKE = "/api/v1/namespaces/_/actions/fn"


async def test_a_journal_write_failure_is_a_503_and_frees_the_quota_slot(served) -> None:
    platform, _, client = served
    invoker = platform.invoker
    assert isinstance(invoker, LocalInvoker) and invoker.journal and invoker.quotas
    journal = invoker.journal
    full = os.open("/dev/full", os.O_WRONLY)  # writes fail with ENOSPC: a full disk
    os.dup2(full, journal._files[journal._current].fd)
    os.close(full)
    for _ in range(3):  # each would leak the namespace's only slot (concurrent=1)
        answer = await client.post(INVOKE, json={})
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == "5"
        body = answer.json()
        assert body["code"] == "unavailable"
        assert "journal could not be written" in body["error"]
    assert invoker.quotas.in_flight("guest") == 0
    journal.rotate = 0  # the next accept opens a new, writable file
    answer = await client.post(INVOKE, json={})
    assert answer.status_code == 202, answer.text


async def test_a_full_writer_backlog_is_a_503_until_the_store_returns(served) -> None:
    platform, store, client = served
    store.down = True
    accepted = []
    for _ in range(3):
        answer = await client.post(INVOKE + "?blocking=true", json={})
        assert answer.status_code == 200, answer.text  # ran; its record waits in the writer
        accepted.append(answer.json()["activationId"])
    assert platform.writer.saturated
    answer = await client.post(INVOKE, json={})
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.json()["code"] == "unavailable"
    assert "limit 3" in answer.json()["error"]
    health = (await client.get("/healthz")).json()
    assert health["status"] == "degraded"
    assert health["writer"] == {"pending": 3, "backlog": 3, "saturated": True}
    metrics = (await client.get("/metrics")).text
    assert "wisp_writer_refused_total 1.0" in metrics
    assert "wisp_writer_backlog 3.0" in metrics
    assert "wisp_writer_pending 3.0" in metrics
    store.down = False
    platform.writer.flush(timeout=10)
    answer = await client.post(INVOKE, json={})
    assert answer.status_code == 202, answer.text
    assert (await client.get("/healthz")).json()["status"] == "ok"
    for aid in accepted:
        assert store.get_activation("guest", aid) is not None
