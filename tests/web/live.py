"""A real ``wisp server`` on a free port, for end-to-end web and gateway tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Result, closed_port, wisp_executable

START_TIMEOUT = 60.0


@dataclass
class LiveServer:
    url: str
    auth: tuple[str, str]
    namespace: str
    env: dict[str, str]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=self.auth, timeout=30)

    def run(self, *args: str, timeout: float = 60) -> Result:
        proc = subprocess.run(
            [wisp_executable(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def live_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[LiveServer]:
    data_dir = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WISP_")}
    env.update(WISP_CONFIG=str(tmp / "config" / "credentials.json"), COLUMNS="200")
    env.update(extra_env or {})
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [wisp_executable(), "server", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"wisp server exited with {proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/api/v1", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"wisp server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        user, _, key = (data_dir / "guest.key").read_text().strip().partition(":")
        yield LiveServer(url, (user, key), "guest", env, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
