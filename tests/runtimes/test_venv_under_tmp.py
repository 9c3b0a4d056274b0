"""A server run from a virtual environment under /tmp (issue 19 item 2): an instance's
private /tmp must not hide the interpreter or its packages. The venv is made with
``--system-site-packages`` (nothing to install); the function imports ``requests``,
reads certifi's bundle and runs ``sys.executable`` in a subprocess. A real server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.live import LiveServer

SRC = Path(__file__).resolve().parents[2] / "src"
CODE = """import subprocess, sys
import requests, urllib3

def main(args):
    with open(requests.certs.where()) as bundle:
        head = bundle.read(64)
    child = subprocess.run([sys.executable, "-c", "print(1)"], capture_output=True, text=True)
    return {"exe": sys.executable, "requests": requests.__file__, "urllib3": urllib3.__file__, "pem": "BEGIN" in head or len(head) > 0,
            "child": child.stdout.strip(), "err": child.stderr[-300:]}
"""


@pytest.fixture
def venv() -> Path:
    home = Path(tempfile.mkdtemp(prefix="wisp-venv-", dir="/tmp"))
    os.chmod(home, 0o755)  # sandbox uids must traverse it, as any interpreter's folder
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--copies", "--system-site-packages", str(home / "env")],
            check=True,
            capture_output=True,
        )
        # As if installed into the venv: copies of the preloaded HTTP stack shadow the
        # base interpreter's (no registry needed).
        (lib,) = (home / "env" / "lib").glob("python3*/site-packages")
        for name in ("requests", "urllib3", "certifi", "idna", "charset_normalizer"):
            folder = Path(__import__(name).__file__).parent
            shutil.copytree(folder, lib / name)
            for info in folder.parent.glob(f"{name}-*.dist-info"):  # what preload reads
                shutil.copytree(info, lib / info.name)
        os.system(f"chmod -R a+rX {home}")
        yield home / "env"
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_functions_run_from_a_venv_under_tmp(tmp_path: Path, venv: Path) -> None:
    python = str(venv / "bin" / "python")
    launch = [python, "-c", "from wisp.cli.main import main; main()"]
    with LiveServer(
        tmp_path, env={"PYTHONPATH": str(SRC)}, launch=lambda argv: [*launch, *argv]
    ) as server:
        server.deploy("net", CODE)
        code, body = server.call("POST", "/api/v1/namespaces/_/actions/net?blocking=true")
        assert code == 200, (body, server.output()[-2000:])
        result = body["response"]["result"]
        assert result["requests"].startswith(str(venv)), result
        assert result["urllib3"].startswith(str(venv)), result
        assert result["pem"] is True and result["child"] == "1", result
