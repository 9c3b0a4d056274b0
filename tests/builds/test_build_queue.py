"""Deploys that need builds queue for WISP_BUILD_CONCURRENCY slots, on threads of their
own: a flood of them neither runs at once nor takes the threads every other API
request needs."""

from __future__ import annotations

import base64
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer
from tests.runtimes.conftest import make_zip

WAITING = 42  # more than the shared thread pool's 40 tokens


def test_a_flood_of_builds_queues_and_the_api_keeps_answering(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    data = Path("/var/lib") / f"wisp-build-queue-{tmp_path_factory.getbasetemp().name}"
    env = {"WISP_BUILD_CONCURRENCY": "1"}
    try:
        with LiveServer(tmp_path_factory.mktemp("queue"), env=env, data_dir=data) as server:
            answers: dict[str, httpx.Response] = {}

            def put(name: str, script: str) -> None:
                files = {"__main__.py": f"def main(a): return {{}}  # {name}", "build.sh": script}
                code = base64.b64encode(make_zip(files)).decode()
                body = {"exec": {"kind": "python:default", "code": code, "binary": True}}
                with server.client() as http:
                    answers[name] = http.put(
                        f"/api/v1/namespaces/_/actions/{name}?overwrite=true",
                        json=body,
                        timeout=300,
                    )

            slow = threading.Thread(target=put, args=("slow", "sleep 20; date +end%s.%N\n"))
            slow.start()
            time.sleep(1.5)
            quick = [
                threading.Thread(target=put, args=(f"q{i}", "date +start%s.%N\n"))
                for i in range(WAITING)
            ]
            for thread in quick:
                thread.start()
            time.sleep(4)
            status, _ = server.call("GET", "/api/v1/namespaces/_/actions?limit=5")
            assert status == 200
            # Answered while every build still waits behind the slow one: not queued
            # behind them for a thread (the shared pool has 40).
            assert slow.is_alive() and not answers, sorted(answers)
            for thread in [slow, *quick]:
                thread.join(300)
            logs = {name: answer.json()["build"]["log"] for name, answer in answers.items()}
            assert all(answer.status_code == 200 for answer in answers.values())
            end = float(logs["slow"].split("end")[1].split()[0])
            starts = [float(logs[f"q{i}"].split("start")[1].split()[0]) for i in range(WAITING)]
            assert min(starts) >= end - 0.05  # one build at a time: they waited for it
    finally:
        shutil.rmtree(data, ignore_errors=True)
