"""invokeConfig in project.yml, `wisp fn invoke-config` and `wisp deadletters`, against a
real `wisp server` through the real `wisp` command."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error
from tests.live import LiveServer

pytestmark = pytest.mark.slow

PROJECT = """
packages:
  - name: jobs
    functions:
      - name: work
        runtime: python:default
        invokeConfig:
          maximumRetryAttempts: 2
          maximumEventAgeSeconds: 600
          backoff: {initial: 500ms, factor: 3, max: 10s}
          retryOn: [developer]
          onFailure: {function: jobs/alert}
      - name: alert
        runtime: python:default
"""
CODE = "def main(args):\n    return args\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("asyncwork")) as live:
        yield live


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "project.yml").write_text(textwrap.dedent(PROJECT).lstrip())
    for name in ("work", "alert"):
        path = root / "packages" / "jobs" / f"{name}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CODE)
    return root


def test_deploy_applies_invoke_config_and_a_second_deploy_changes_nothing(
    server: LiveServer, project: Path
) -> None:
    first = json.loads(server.ok("deploy", str(project), "--json").out)
    labels = {(c["entity"], c["name"], c["action"]) for c in first["changes"]}
    assert ("invokeConfig", "jobs/work", "create") in labels
    status, config = server.call("GET", "/api/v1/namespaces/_/actions/jobs/work/invokeConfig")
    assert status == 200
    assert config["maximumRetryAttempts"] == 2 and config["backoff"]["initial"] == 0.5
    assert config["onFailure"] == {"function": "jobs/alert"}
    again = json.loads(server.ok("plan", str(project), "--json").out)
    assert again["summary"]["create"] == again["summary"]["update"] == 0, again
    # A change made outside the project is planned back.
    server.ok("fn", "invoke-config", "jobs/work", "--max-retries", "5")
    drift = json.loads(server.ok("plan", str(project), "--json").out)
    [update] = [c for c in drift["changes"] if c["action"] == "update"]
    assert update["entity"] == "invokeConfig" and "maximumRetryAttempts" in update["reasons"][0]
    server.ok("deploy", str(project))
    assert json.loads(server.ok("fn", "invoke-config", "jobs/work", "--json").out) == config


def test_invoke_config_shows_and_changes_only_what_is_named(server: LiveServer) -> None:
    server.ok("deploy", str(Path(__file__).resolve().parents[2] / "examples" / "hello"))
    shown = server.ok("fn", "invoke-config", "hello/hello")
    assert "max retries" in shown.out and "0" in shown.out
    changed = json.loads(
        server.ok(
            "fn", "invoke-config", "hello/hello", "--max-retries", "3", "--max-age", "10m",
            "--backoff", "2s", "--retry-on", "developer,application", "--json",
        ).out
    )  # fmt: skip
    assert changed["maximumRetryAttempts"] == 3
    assert changed["maximumEventAgeSeconds"] == 600
    assert changed["backoff"]["initial"] == 2.0 and changed["backoff"]["factor"] == 2.0
    assert changed["retryOn"] == ["internal", "developer", "application"]
    kept = json.loads(
        server.ok("fn", "invoke-config", "hello/hello", "--backoff-factor", "4", "--json").out
    )
    assert kept["maximumRetryAttempts"] == 3 and kept["backoff"] == {**changed["backoff"],
                                                                     "factor": 4.0}  # fmt: skip
    text = server.ok("fn", "invoke-config", "hello/hello").out
    assert "2.0s x4.0" in text and "developer, application" in text


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--max-retries", "7"], ["maximumRetryAttempts", "0 to 5"]),
        (["--max-age", "5"], ["maximumEventAgeSeconds", "60 to 21600"]),
        (["--max-age", "soon"], ["--max-age", "duration"]),
        (["--backoff", "0s"], ["backoff.initial"]),
        (["--on-failure", "a", "--no-on-failure"], ["one of"]),
    ],
)
def test_invoke_config_errors_are_one_line(
    server: LiveServer, args: list[str], fragments: list[str]
) -> None:
    server.ok("deploy", str(Path(__file__).resolve().parents[2] / "examples" / "hello"))
    assert_one_line_error(server.run("fn", "invoke-config", "hello/hello", *args), *fragments)


def test_invoke_config_of_a_missing_function(server: LiveServer) -> None:
    assert_one_line_error(server.run("fn", "invoke-config", "no/such"), "does not exist")


def test_deadletters_commands_on_an_empty_namespace(server: LiveServer) -> None:
    assert json.loads(server.ok("deadletters", "list", "--json").out) == []
    assert "No dead letters" in server.ok("deadletters", "list").err
    assert_one_line_error(server.run("deadletters", "get", "0" * 32), "does not exist")
    assert_one_line_error(server.run("deadletters", "redrive", "0" * 32), "does not exist")
    assert "Purged 0 dead letters" in server.ok("deadletters", "purge", "--yes").out
    assert_one_line_error(server.run("deadletters", "purge"), "--yes")
