"""Blocking invocations are journaled only once their caller stops waiting (a 202):
answered within the wait they cost no journal write, yet one that turned
asynchronous is recorded as failed after a crash, like any accepted invocation."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from tests.invoker.conftest import make_target
from tests.test_server import run_server


def journaled(data_dir: Path) -> str:
    return "".join(p.read_text() for p in (data_dir / "journal").glob("*.jsonl"))


async def test_only_detached_blocking_invocations_are_journaled(platform, tmp_path):
    quick = make_target("def main(args):\n    return {}\n", name="quick")
    slow = make_target("import time\ndef main(args):\n    time.sleep(0.3)\n    return {}\n")
    answered = platform.invoker.submit(quick, {}, subject="guest", blocking=True)
    await answered.done
    assert answered.activation_id not in journaled(tmp_path)
    waited_out = platform.invoker.submit(slow, {}, subject="guest", blocking=True)
    waited_out.detach()  # what the API does when the sync limit passes
    assert waited_out.activation_id in journaled(tmp_path)
    fire_and_forget = platform.invoker.submit(quick, {}, subject="guest")
    assert fire_and_forget.activation_id in journaled(tmp_path)
    await waited_out.done
    await fire_and_forget.done


def test_a_blocking_call_past_the_sync_limit_survives_a_crash(tmp_path):
    first = run_server(tmp_path, WISP_SYNC_LIMIT="0.3")
    server = next(first)
    code = "import time\ndef main(args):\n    time.sleep(20)\n    return {}\n"
    action = {"exec": {"kind": "python:default", "code": code}, "limits": {"timeout": 30000}}
    assert server.call("PUT", "/api/v1/namespaces/_/actions/long", action)[0] == 200
    status, body = server.call("POST", "/api/v1/namespaces/_/actions/long?blocking=true", {})
    assert status == 202, body
    aid = body["activationId"]  # type: ignore[index]
    server.proc.kill()  # SIGKILL while it runs
    server.proc.communicate(timeout=10)
    with contextlib.suppress(StopIteration):
        next(first)
    second = run_server(tmp_path)
    restarted = next(second)
    try:
        deadline = time.monotonic() + 10
        while True:
            status, record = restarted.call("GET", f"/api/v1/namespaces/_/activations/{aid}")
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 200, record
        assert record["statusCode"] == 3  # type: ignore[index]
        assert "platform stopped" in record["response"]["result"]["error"]  # type: ignore[index]
    finally:
        with contextlib.suppress(StopIteration):
            next(second)
