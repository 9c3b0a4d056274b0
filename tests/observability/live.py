"""A real `wisp server` subprocess with two namespaces, for stream, CLI and console tests."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import closed_port, wisp_executable

START_TIMEOUT = 60.0
CODE = (
    "def main(args):\n"
    "    name = args.get('name', 'stranger')\n"
    "    print('hello', name)\n"
    "    if args.get('fail'):\n"
    "        return {'error': 'failed for ' + name}\n"
    "    return {'greeting': 'Hello ' + name}\n"
)


@dataclass
class Live:
    url: str
    data_dir: Path
    env: dict[str, str]  # for `wisp` subprocesses: logged in as guest
    guest: str  # uuid:key
    other: str  # another namespace's uuid:key
    other_name: str
    log: Path

    def client(self, auth: str | None = None) -> httpx.Client:
        auth = auth or self.guest
        uuid, _, key = auth.partition(":")
        return httpx.Client(base_url=self.url, auth=(uuid, key), timeout=30)

    def deploy(self, name: str, code: str = CODE, auth: str | None = None, **extra: Any) -> None:
        body = {"exec": {"kind": "python:default", "code": code}, **extra}
        with self.client(auth) as http:
            path = f"/api/v1/namespaces/_/actions/{name}?overwrite=true"
            if "/" in name:
                package = name.split("/")[0]
                http.put(f"/api/v1/namespaces/_/packages/{package}?overwrite=true", json={})
            response = http.put(path, json=body)
            assert response.status_code == 200, response.text

    def invoke(self, name: str, params: dict[str, Any] | None = None, auth: str | None = None):
        with self.client(auth) as http:
            path = f"/api/v1/namespaces/_/actions/{name}?blocking=true"
            return http.post(path, json=params or {})


def start_live(tmp: Path, args: tuple[str, ...] = ()) -> Iterator[Live]:
    data_dir = tmp / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WISP_")}
    env.update(WISP_CONFIG=str(tmp / "config" / "credentials.json"), COLUMNS="200")
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                wisp_executable(),
                "server",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(proc, url, log)
        guest = (data_dir / "guest.key").read_text().strip()
        created = subprocess.run(
            [
                wisp_executable(),
                "admin",
                "namespace",
                "create",
                "other",
                "--data-dir",
                str(data_dir),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        yield Live(url, data_dir, env, guest, created.stdout.strip(), "other", log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"wisp server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/api/v1", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"wisp server did not start within {START_TIMEOUT}s:\n{log.read_text()}")


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
