"""Builds on a server without root: the user-namespace level (a real `wisp server` run
as ``nobody``, as in tests/sandbox/test_userns.py)."""

from __future__ import annotations

import base64
import contextlib
import socket
from pathlib import Path

import pytest

from tests.runtimes.conftest import make_zip
from tests.sandbox.test_userns import NOBODY, ROOT, nobody_server
from wisp.sandbox.layers import user_namespaces

MARKER = "765.4321"


def reachable(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        return True
    return False


@pytest.mark.skipif(not user_namespaces()[0], reason="this host refuses user namespaces")
def test_an_unprivileged_server_sandboxes_builds_in_user_namespaces(tmp_path: Path) -> None:
    with nobody_server(tmp_path) as server:
        assert server.proc is not None
        data = server.data_dir
        ports = [p for p in (5432, 6379, server.port) if reachable(p)]
        script = "\n".join(
            [
                "echo uid $(id -u) pid $$",
                f"head -c1 {data}/guest.key >/dev/null 2>&1 && echo READ || echo DENIED",
                f"kill -9 {server.proc.pid} 2>/dev/null && echo KILLED || echo NOKILL",
                *(
                    f"(exec 3<>/dev/tcp/127.0.0.1/{p}) 2>/dev/null && echo CONNECTED || echo REFUSED"
                    for p in ports
                ),
                "touch /build/cache/planted 2>/dev/null && echo WROTE || echo NOWRITE",
                f"setsid nohup sleep {MARKER} >/dev/null 2>&1 &",
                "grep -E '^Cap(Eff|Bnd)' /proc/self/status",
                "echo done",
            ]
        )
        files = {"__main__.py": "def main(a):\n    return {}\n", "build.sh": script + "\n"}
        code = base64.b64encode(make_zip(files)).decode()
        status, body = server.call(
            "PUT",
            "/api/v1/namespaces/_/actions/built?overwrite=true",
            {"exec": {"kind": "python:default", "code": code, "binary": True}},
        )
        assert status == 200, body
        log = body["build"]["log"]  # type: ignore[index]
        assert f"uid {NOBODY if ROOT else ''}" in log and "pid 2" in log, log  # pid 1 is its init
        assert "DENIED" in log and "NOKILL" in log and "NOWRITE" in log, log
        assert log.count("REFUSED") == len(ports) and "CONNECTED" not in log, log
        assert "CapEff:\t0000000000000000" in log and "CapBnd:\t0000000000000000" in log, log
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    assert MARKER not in (entry / "cmdline").read_text(errors="replace")
        assert server.proc.poll() is None
        # pip through the registry proxy, in the same sandbox, and the function runs with it.
        files = {
            "__main__.py": "import six\ndef main(a):\n    return {'six': six.__version__}\n",
            "requirements.txt": "six==1.16.0\n",
        }
        code = base64.b64encode(make_zip(files)).decode()
        status, body = server.call(
            "PUT",
            "/api/v1/namespaces/_/actions/deps?overwrite=true",
            {"exec": {"kind": "python:default", "code": code, "binary": True}},
        )
        assert status == 200, body
        assert server.invoke("deps") == {"six": "1.16.0"}
