"""Exactly once across replicas: two real `wisp server` processes on one PostgreSQL
database race for the same ticks, and a replica killed and restarted mid-schedule
fires nothing again. Real time: it waits for the next minute's tick."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

TRIGGERS = 12  # each tick of each is a race between the two replicas
JOB = "def main(args):\n    return {'tick': True}\n"


def replica(tmp: Path, name: str, database: str) -> LiveServer:
    env = {"WISP_DATABASE_URL": database, "WISP_STEM_CELLS": "1"}
    return LiveServer(tmp, name=name, env=env)


def activations(client: httpx.Client) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/namespaces/_/activations", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()
    return found


def test_two_replicas_fire_each_tick_once_and_a_restart_fires_nothing_again(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    database = empty_postgres_url  # the servers create the schema and ``guest`` in it
    a, b = replica(tmp_path, "a", database), replica(tmp_path, "b", database)
    try:
        a.start()  # first: it creates the schema and the guest namespace
        b.start()
        a.deploy("job", JOB)
        with a.client() as client:
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
            a.stop(signal.SIGKILL)
            a.start()
            time.sleep(3)
            assert Counter(r["name"] for r in activations(client)) == by_name
        for server in (a, b):
            assert "Traceback" not in server.output(), server.output()
    finally:
        try:
            a.stop()
        finally:
            b.stop()


def wait_for(client: httpx.Client, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        records = activations(client)
        if len(records) >= count or time.monotonic() > deadline:
            time.sleep(1)  # anything extra (a double fire) would land by now
            return activations(client)
        time.sleep(0.5)
