"""A real ``wisp server`` process on a free port, for end-to-end tests.

    with LiveServer(tmp_path, env={"WISP_PAYLOAD_MAX": "100"}) as server:
        server.call("GET", "/api/v1/namespaces/_/actions")
        server.ok("fn", "list")             # the real `wisp` command, logged in as guest

Everything a server owns lies under ``tmp / name``: its data dir, the CLI's credentials and
the log (stdout and stderr, appended to across restarts). Stopping it — however it is
stopped — fails the test if a sandbox process it started outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest

from tests.cli.conftest import Result, closed_port, wisp_executable

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def wisp_env(config: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without WISP_* variables, the CLI's credentials at ``config``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WISP_")}
    env.update(WISP_CONFIG=str(config), COLUMNS="200")
    env.update(extra or {})
    return env


class LiveServer:
    """``wisp server`` in a subprocess. ``env`` is added to a clean environment (no WISP_*
    from this one); ``args`` go after ``server --port P --data-dir D``; ``launch`` turns
    the server's arguments into the command to run (default: the installed ``wisp``)."""

    namespace = "guest"

    def __init__(
        self,
        tmp: Path,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        name: str = "server",
        data_dir: Path | None = None,
        port: int | None = None,
        launch: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        home = tmp / name
        home.mkdir(parents=True, exist_ok=True)
        self.port = port or closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir or home / "data"
        self.log = home / "server.log"
        self.env = wisp_env(home / "credentials.json", env)
        self.args = tuple(args)
        self.launch = launch or (lambda argv: [wisp_executable(), *argv])
        self.proc: subprocess.Popen[bytes] | None = None
        self._http: httpx.Client | None = None  # call's, kept alive: a burst of calls is quick

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def config(self) -> Path:
        """Where the server saved the CLI's credentials."""
        return Path(self.env["WISP_CONFIG"])

    @property
    def key(self) -> str:
        """The guest namespace's ``uuid:key``."""
        return (self.data_dir / "guest.key").read_text().strip()

    @property
    def auth(self) -> tuple[str, str]:
        uuid, _, key = self.key.partition(":")
        return uuid, key

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def start(self) -> None:
        """Start the server and wait until it answers ``GET /api/v1``."""
        argv = ["server", "--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.launch(argv), env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT
        while self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/api/v1", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                pytest.fail(f"wisp server did not start in {START_TIMEOUT}s:\n{self.output()}")
            time.sleep(0.1)
        pytest.fail(f"wisp server exited with {self.proc.returncode}:\n{self.output()}")

    def stop(self, signum: int = signal.SIGTERM) -> int | None:
        """Send ``signum`` (SIGKILL after STOP_TIMEOUT) and wait; the exit status, None if
        it was never started. Fails the test if a sandbox outlives the server."""
        if self._http is not None:
            self._http.close()
            self._http = None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            pids = self.sandbox_pids()
            self.proc.send_signal(signum)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            left = wait_gone(pids)
            if left:
                pytest.fail(f"sandbox processes {left} outlived wisp server:\n{self.output()}")
        return self.proc.returncode

    def sandbox_pids(self) -> list[int]:
        """The server's child processes (zygotes) and theirs (instances)."""
        if self.proc is None:
            return []
        zygotes = children(self.proc.pid)
        return zygotes + [pid for z in zygotes for pid in children(z)]

    def client(self, key: str | None = None) -> httpx.Client:
        """An API client authenticated as ``key`` (``uuid:key``; default: guest)."""
        uuid, _, secret = (key or self.key).partition(":")
        return httpx.Client(base_url=self.url, auth=(uuid, secret), timeout=60)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """One API request as guest: the status and the decoded JSON body (None if empty)."""
        if self._http is None:
            self._http = self.client()
        answer = self._http.request(method, path, json=body)
        return answer.status_code, answer.json() if answer.content else None

    def deploy(self, name: str, code: str, auth: str | None = None, **extra: Any) -> None:
        """A ``python:default`` function (its package too, for ``pkg/fn``), as ``auth``."""
        body = {"exec": {"kind": "python:default", "code": code}, **extra}
        with self.client(auth) as http:
            if "/" in name:
                package = name.split("/")[0]
                http.put(f"/api/v1/namespaces/_/packages/{package}?overwrite=true", json={})
            response = http.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true", json=body)
            assert response.status_code == 200, response.text

    def run(self, *args: str, timeout: float = 120) -> Result:
        """The real ``wisp`` command, logged in as guest."""
        proc = subprocess.run(
            [wisp_executable(), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str) -> Result:
        """``run``, asserting that it succeeded without a traceback."""
        result = self.run(*args)
        assert result.code == 0, f"wisp {' '.join(args)} failed: {result.err}"
        assert "Traceback" not in result.err
        return result


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: list[int], seconds: float = 10) -> list[int]:
    """Those of ``pids`` still alive after waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return []
        time.sleep(0.05)
    return [p for p in pids if alive(p)]
