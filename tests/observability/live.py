"""A real `wisp server` subprocess with two namespaces, for stream, CLI and console tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer

CODE = (
    "def main(args):\n"
    "    name = args.get('name', 'stranger')\n"
    "    print('hello', name)\n"
    "    if args.get('fail'):\n"
    "        return {'error': 'failed for ' + name}\n"
    "    return {'greeting': 'Hello ' + name}\n"
)


class Live(LiveServer):
    """A server with a second namespace, ``other``, beside guest."""

    other_name = "other"
    other = ""  # its uuid:key, once started

    def start(self) -> None:
        super().start()
        created = self.run(
            "admin", "namespace", "create", self.other_name, "--data-dir", str(self.data_dir)
        )
        assert created.code == 0, created.err
        self.other = created.out.strip()

    def deploy(self, name: str, code: str = CODE, auth: str | None = None, **extra: Any) -> None:
        super().deploy(name, code, auth, **extra)

    def invoke(
        self, name: str, params: dict[str, Any] | None = None, auth: str | None = None
    ) -> httpx.Response:
        with self.client(auth) as http:
            path = f"/api/v1/namespaces/_/actions/{name}?blocking=true"
            return http.post(path, json=params or {})


def start_live(tmp: Path, args: tuple[str, ...] = ()) -> Iterator[Live]:
    with Live(tmp, args=args) as live:
        yield live


def subscribers(live: Live) -> int:
    text = httpx.get(f"{live.url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("wisp_stream_subscribers "):
            return int(float(line.split()[1]))
    return 0


def wait_for_subscribers(live: Live, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while subscribers(live) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"no {count} live stream subscribers after {timeout}s")
        time.sleep(0.05)
