"""`wisp deploy` of scheduled triggers and `wisp triggers ...` against a real server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import assert_one_line_error
from tests.cli.test_e2e import server
from tests.live import LiveServer

__all__ = ["server"]  # the module-scoped real `wisp server` fixture
pytestmark = pytest.mark.slow

PROJECT = """
packages:
  - name: sched
    functions:
      - name: job
        triggers:
          - name: nightly
            sourceType: scheduler
            sourceDetails:
              cron: "0 3 * * *"
              withBody: {size: 3}
          - name: paused
            type: scheduled
            scheduledDetails:
              cron: "*/10 * * * *"
              body: {name: Ada}
              timezone: Europe/Paris
            enabled: false
"""
JOB = "def main(args):\n    return {'got': args}\n"


def as_json(server: LiveServer, *args: str) -> Any:
    return json.loads(server.ok(*args, "--json").out)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sched")
    (root / "project.yml").write_text(PROJECT)
    (root / "packages" / "sched").mkdir(parents=True)
    (root / "packages" / "sched" / "job.py").write_text(JOB)
    return root


def test_deploy_creates_triggers_and_rules_then_changes_nothing(
    server: LiveServer, project: Path
) -> None:
    first = server.ok("deploy", str(project))
    for line in ("+ trigger nightly", "+ trigger paused", "+ rule nightly", "+ rule paused"):
        assert line in first.out, first.out
    second = as_json(server, "deploy", str(project))
    assert second["changed"] is False
    (project / "project.yml").write_text(PROJECT.replace("0 3 * * *", "0 4 * * *"))
    try:
        plan = as_json(server, "plan", str(project))
        updates = [c for c in plan["changes"] if c["action"] == "update"]
        assert updates == [
            {
                "entity": "trigger",
                "name": "nightly",
                "action": "update",
                "reasons": ["cron 0 3 * * * → 0 4 * * *"],
            }
        ]
    finally:
        (project / "project.yml").write_text(PROJECT)


def test_list_and_get_show_schedules_and_runs(server: LiveServer, project: Path) -> None:
    listed = {t["name"]: t for t in as_json(server, "triggers", "list")}
    assert listed["nightly"]["next_run_at"].endswith("T03:00:00.000Z")
    assert listed["nightly"]["last_run_at"] is None
    assert listed["paused"]["enabled"] is False and listed["paused"]["next_run_at"] is None
    table = server.ok("triggers", "list").out
    assert "nightly" in table and "*/10 * * * * (Europe/Paris)" in table
    doc = as_json(server, "triggers", "get", "nightly")
    assert doc["rules"] == {
        "guest/nightly": {"action": {"name": "job", "path": "guest/sched"}, "status": "active"}
    }
    assert "guest/nightly → guest/sched/job (active)" in server.ok("triggers", "get", "nightly").out


def test_fire_runs_the_function_with_the_body_and_a_cause(
    server: LiveServer, project: Path
) -> None:
    trigger_id = json.loads(server.ok("triggers", "fire", "nightly", "-p", "extra", "1").out)[
        "activationId"
    ]
    for _ in range(100):
        records = as_json(server, "activations", "list", "--limit", "10")
        jobs = [r for r in records if r["name"] == "sched/job"]
        if jobs:
            break
        time.sleep(0.1)
    record = as_json(server, "activations", "get", jobs[0]["activationId"])
    assert record["cause"] == trigger_id
    assert record["response"]["result"] == {"got": {"size": 3, "extra": 1}}
    assert any(r["activationId"] == trigger_id for r in records)


def test_enable_disable_and_create_delete(server: LiveServer, project: Path) -> None:
    assert "disabled" in server.ok("triggers", "disable", "nightly").err
    assert as_json(server, "triggers", "get", "nightly")["next_run_at"] is None
    assert "next run" in server.ok("triggers", "enable", "nightly").err
    created = as_json(
        server,
        "triggers",
        "create",
        "adhoc",
        "--function",
        "sched/job",
        "--cron",
        "30 2 * * *",
        "--timezone",
        "America/New_York",
        "--concurrency",
        "skip",
    )
    assert created["schedule"]["concurrency"] == "skip"
    assert "guest/adhoc" in created["rules"]
    server.ok("triggers", "delete", "adhoc")
    assert_one_line_error(server.run("triggers", "get", "adhoc"), "trigger 'adhoc' does not exist")
    assert_one_line_error(server.run("triggers", "disable", "adhoc"), "does not exist")


def test_bad_input_is_a_one_line_error(server: LiveServer, project: Path) -> None:
    assert_one_line_error(
        server.run("triggers", "create", "bad", "--cron", "0 25 * * *"),
        "hour field '25': 25 is out of range 0-23",
    )
    assert_one_line_error(
        server.run("triggers", "create", "bad", "--timezone", "UTC"), "need --cron"
    )
    assert_one_line_error(server.run("triggers", "get", "a/b"), "not a valid trigger name")


def test_fire_without_an_active_rule_runs_nothing(server: LiveServer, project: Path) -> None:
    server.ok("triggers", "create", "lonely")
    result = server.ok("triggers", "fire", "lonely")
    assert result.out == "" and "no active rule" in result.err
