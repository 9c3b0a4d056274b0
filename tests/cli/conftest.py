"""Run the real, installed ``wisp`` command in a clean environment."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Result:
    code: int
    out: str
    err: str


Wisp = Callable[..., Result]


def wisp_executable() -> str:
    """The `wisp` installed beside the interpreter running the tests (scripts/test's
    virtual environment), else the one on PATH."""
    beside = Path(sys.executable).with_name("wisp")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("wisp")
    if found is None:
        pytest.fail("the `wisp` command is not installed: run scripts/test or `pip install -e .`")
    return found


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WISP_")}
    env["WISP_CONFIG"] = str(tmp_path / "config" / "credentials.json")
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def wisp(cli_env: dict[str, str]) -> Wisp:
    executable = wisp_executable()

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Result:
        proc = subprocess.run(
            [executable, *args],
            env={**cli_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """A failure: non-zero exit, exactly one `Error: ...` line, no traceback."""
    assert result.code != 0, result
    assert "Traceback" not in result.err, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
