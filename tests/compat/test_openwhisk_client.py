"""Compatibility judged by a real client: the ``openwhisk`` npm package (3.21.x)
drives a real ``wisp server`` through ``tests/compat/client.mjs``.

Needs ``node`` and ``npm install`` in tests/compat (``scripts/test`` runs it). Without
them the test is skipped locally and fails when ``CI`` is set: CI must run it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "client.mjs"
CLIENT_TIMEOUT = 300.0

pytestmark = pytest.mark.slow


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        missing = "`node` is not on PATH"
    elif not (HERE / "node_modules" / "openwhisk" / "package.json").is_file():
        missing = "the openwhisk npm client is not installed: run `npm install` in tests/compat"
    else:
        return node
    if os.environ.get("CI"):
        pytest.fail(missing)
    pytest.skip(missing)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("compat")) as live:
        yield live


def _run_client(node: str, server: LiveServer) -> dict[str, Any]:
    proc = subprocess.run(
        [node, str(SCRIPT), server.url, server.key],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )
    context = (
        f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}\n"
        f"server log:\n{server.output()[-5000:]}"
    )
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"client.mjs did not print one JSON object:\n{context}")
    assert proc.returncode == 0 and report["ok"], (
        "openwhisk client checks failed:\n"
        + "\n".join(f"- {f['step']}: {f['error']}" for f in report["failures"])
        + f"\n{context}"
    )
    return report


def test_openwhisk_npm_client_against_a_real_server(server: LiveServer) -> None:
    node = _node()
    report = _run_client(node, server)

    assert report["failures"] == []
    expected = {
        "packages.update",
        "packages.create existing (409)",
        "actions.update in package",
        "actions.update default package",
        "actions.update failing",
        "actions.update again bumps version",
        "actions.list",
        "actions.get",
        "packages.get",
        "actions.invoke blocking",
        "namespaces.list + fully qualified invoke",
        "actions.invoke blocking result",
        "actions.invoke non-blocking",
        "activations.get",
        "activations.result",
        "activations.logs",
        "activations.list",
        "actions.invoke error result (502)",
        "actions.invoke error with result:true (502)",
        "actions.invoke missing (404)",
        "routes.create",
        "routes.list",
        "routes call through gwApiUrl",
        "routes.delete",
        "actions.delete",
        "packages.delete",
        "wrong api_key (401)",
    }
    assert expected <= set(report["passed"]), expected - set(report["passed"])

    results = report["results"]
    assert results["packages.update"]["namespace"] == "guest"
    assert results["actions.update in package"]["namespace"].startswith("guest/compat-")
    assert results["actions.invoke blocking"]["result"] == {"message": "hi bob", "greeting": "hi"}
    assert results["actions.invoke blocking result"] == {"args": {"bound": "yes", "x": 1}}
    assert results["namespaces.list + fully qualified invoke"]["namespaces"] == ["guest"]
    assert results["activations.result"]["result"]["message"] == "hi async"
    assert any(line.endswith("stdout: hi async") for line in results["activations.logs"]["logs"])
    failed = results["actions.invoke error result (502)"]
    assert failed["statusCode"] == 502 and failed["status"] == "application error"
    assert failed["message"].endswith('--> "boom"')
    assert results["wrong api_key (401)"]["statusCode"] == 401
    assert results["routes.create"]["gwApiUrl"].startswith(f"{server.url}/gw/guest/compat-")
    assert results["routes call through gwApiUrl"]["body"]["args"]["id"] == "42"
