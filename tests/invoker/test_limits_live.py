"""A change of a namespace's limits applies promptly (issue 20 item 4): at once on a
server that reports it (``GET .../limits`` applies what it read), and on every server
within the quotas' refresh period otherwise. A real server, the real ``wisp admin``."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.live import LiveServer
from wisp.invoker.quotas import BOUND

SLOW = "import time\ndef main(args):\n    time.sleep(1.5)\n    return {}\n"


def set_concurrent(server: LiveServer, n: int) -> None:
    server.ok(
        "admin", "namespace", "limits", "guest", "--concurrent", str(n),
        "--data-dir", str(server.data_dir),
    )  # fmt: skip


def burst(server: LiveServer, n: int) -> list[int]:
    """``n`` blocking invokes at once: their status codes, sorted."""

    def invoke(_: int) -> int:
        with server.client() as http:
            path = "/api/v1/namespaces/_/actions/slow?blocking=true"
            return http.post(path, json={}).status_code

    with ThreadPoolExecutor(n) as threads:
        return sorted(threads.map(invoke, range(n)))


def test_a_lowered_concurrency_limit_applies_at_once_and_within_the_refresh(
    tmp_path: Path,
) -> None:
    with LiveServer(tmp_path) as server:
        server.deploy("slow", SLOW)
        set_concurrent(server, 5)
        assert burst(server, 3) == [200, 200, 200]
        # Lowered, then reported: enforced from the next invoke on.
        set_concurrent(server, 1)
        code, limits = server.call("GET", "/api/v1/namespaces/_/limits")
        assert code == 200 and limits["concurrentInvocations"] == 1
        assert burst(server, 3) == [200, 429, 429]
        # Raised without asking this server: enforced within the refresh period.
        set_concurrent(server, 3)
        time.sleep(BOUND + 0.5)
        assert burst(server, 3) == [200, 200, 200]
        set_concurrent(server, 1)
        time.sleep(BOUND + 0.5)
        assert burst(server, 3) == [200, 429, 429]
