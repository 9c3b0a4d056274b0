"""Exactly once across replicas: two real `wisp server` processes on one PostgreSQL
database race for the same ticks, and a replica killed and restarted mid-schedule
fires nothing again. Real time: it waits for the next minute's tick."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import make_url

from tests.cli.conftest import closed_port, wisp_executable

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TRIGGERS = 12  # each tick of each is a race between the two replicas
START_TIMEOUT = 60.0
JOB = "def main(args):\n    return {'tick': True}\n"


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """A database of its own: the servers create ``guest`` in it."""
    url = make_url(postgres_url)
    dsn = url.render_as_string(hide_password=False)
    name = f"wisp_replicas_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Replica:
    def __init__(self, tmp: Path, name: str, database: str) -> None:
        self.data_dir = tmp / name
        self.log = tmp / f"{name}.log"
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WISP_")}
        self.env.update(
            WISP_DATABASE_URL=database,
            WISP_CONFIG=str(tmp / f"{name}-credentials.json"),
            WISP_STEM_CELLS="1",
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    wisp_executable(),
                    "server",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                ],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"wisp server exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/api/v1", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"wisp server did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def activations(client: httpx.Client) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/namespaces/_/activations", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def test_two_replicas_fire_each_tick_once_and_a_restart_fires_nothing_again(
    tmp_path: Path, database: str
) -> None:
    a, b = Replica(tmp_path, "a", database), Replica(tmp_path, "b", database)
    try:
        a.start()  # first: it creates the schema and the guest namespace
        b.start()
        uuid_, _, key = (a.data_dir / "guest.key").read_text().strip().partition(":")
        with httpx.Client(base_url=a.url, auth=(uuid_, key), timeout=30) as client:
            put = client.put(
                "/api/v1/namespaces/_/actions/job",
                json={"exec": {"kind": "python:default", "code": JOB}},
            )
            assert put.status_code == 200, put.text
            # Create every trigger within one minute, so they share their first tick.
            if time.time() % 60 > 45:
                time.sleep(61 - time.time() % 60)
            for i in range(TRIGGERS):
                body = {"schedule": {"cron": "* * * * *"}, "parameters": {"n": i}}
                assert client.put(f"/api/v1/namespaces/_/triggers/t{i}", json=body).is_success
                rule = {"trigger": f"t{i}", "action": "job"}
                assert client.put(f"/api/v1/namespaces/_/rules/r{i}", json=rule).is_success
            tick = client.get("/api/v1/namespaces/_/triggers/t0").json()["next_run_at"]
            time.sleep(max(0.0, 60 - time.time() % 60) + 4)

            records = wait_for(client, 2 * TRIGGERS)
            by_name = Counter(r["name"] for r in records)
            assert by_name == Counter({"job": TRIGGERS, **{f"t{i}": 1 for i in range(TRIGGERS)}})
            trigger_ids = {r["activationId"] for r in records if r["name"] != "job"}
            causes = [
                client.get(f"/api/v1/namespaces/_/activations/{r['activationId']}").json()
                for r in records
                if r["name"] == "job"
            ]
            assert {c["cause"] for c in causes} == trigger_ids
            t0 = client.get("/api/v1/namespaces/_/triggers/t0").json()
            assert t0["last_run_at"][:19] == tick[:19]

            # Kill one replica without warning and start it again, mid-schedule.
            a.kill()
            a.start()
            time.sleep(3)
            assert Counter(r["name"] for r in activations(client)) == by_name
        for replica in (a, b):
            assert "Traceback" not in replica.log.read_text(), replica.log.read_text()
    finally:
        a.stop()
        b.stop()


def wait_for(client: httpx.Client, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        records = activations(client)
        if len(records) >= count or time.monotonic() > deadline:
            time.sleep(1)  # anything extra (a double fire) would land by now
            return activations(client)
        time.sleep(0.5)
