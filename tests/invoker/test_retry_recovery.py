"""A retry the journal kept across a restart, run by the real invoker at start-up."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.invoker.conftest import make_target
from wisp import codec
from wisp.config import Settings
from wisp.invoker.request import InvocationRequest
from wisp.models import DEAD, SUCCESS, Activation
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

CODE = "import os\ndef main(args):\n    return {'attempt': os.environ['__OW_ATTEMPT']}\n"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def recover(tmp_path: Path, age_ms: int, max_age: int) -> tuple[Activation, MemoryStore]:
    """Journal attempt 2 of a request accepted ``age_ms`` ago, as a stop leaves it; start
    a platform on that data dir; the request's record."""
    store = MemoryStore()
    target = make_target(CODE)
    store.put_action(target.action)
    config = {"maximumRetryAttempts": 3, "maximumEventAgeSeconds": max_age}
    store.put_invoke_config("guest", "default", "fn", config, 1)
    now = now_ms()
    earlier = [{"attempt": 1, "start": now - age_ms, "end": now - age_ms + 5, "status": "x"}]
    request = InvocationRequest(
        "ab" * 16,
        target,
        {"n": 1},
        "guest",
        start=now - age_ms,
        attempt=2,
        extra={"notBefore": now - 10, "attempts": earlier},
    )
    journal = tmp_path / "journal"
    journal.mkdir(mode=0o700)
    (journal / "1.jsonl").write_bytes(codec.dumps(request.entry()) + b"\n")
    settings = Settings(data_dir=tmp_path, pool_memory_mb=1024, stem_cells=1, keepalive=60)
    platform = build_platform(settings, store)
    await platform.start()
    try:
        for _ in range(600):
            record = platform.writer.get("guest", request.activation_id)
            if record is not None:
                return record, store
            await asyncio.sleep(0.05)
        raise AssertionError("the journaled retry left no record")
    finally:
        await platform.stop()


async def test_a_journaled_retry_runs_as_its_attempt(tmp_path: Path, server_umask: None) -> None:
    record, _ = await recover(tmp_path, age_ms=5_000, max_age=600)
    assert record.status_code == SUCCESS, record.result
    assert record.result == {"attempt": "2"}
    annotations = {a["key"]: a["value"] for a in record.annotations}
    assert annotations["attempt"] == 2 and annotations["recovered"] is True
    assert [a["attempt"] for a in annotations["attempts"]] == [1]


async def test_a_retry_past_its_maximum_age_is_dead_without_running(
    tmp_path: Path, server_umask: None
) -> None:
    record, store = await recover(tmp_path, age_ms=120_000, max_age=60)
    assert record.status_code == DEAD
    annotations = {a["key"]: a["value"] for a in record.annotations}
    assert annotations["reason"] == "EventAgeExceeded"
    assert "maximum event age" in record.result["error"]
    letter = store.get_dead_letter("guest", record.activation_id)
    assert letter is not None and letter.reason == "EventAgeExceeded"
    assert letter.request["params"] == {"n": 1}
