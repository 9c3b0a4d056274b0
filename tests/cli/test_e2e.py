"""End to end: a real `wisp server` process driven by the real `wisp` command.

The tests run in file order against one server and build on each other: deploy,
redeploy, plan, invoke, activations, list/get/delete, then a new namespace.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Result, assert_one_line_error
from tests.live import LiveServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("e2e")) as live:
        yield live


@pytest.fixture(scope="module")
def first_deploy(server: LiveServer) -> Result:
    return server.run("deploy", str(EXAMPLE))


def test_server_saved_cli_credentials(server: LiveServer) -> None:
    saved = json.loads(Path(server.env["WISP_CONFIG"]).read_text())
    name = server.url.removeprefix("http://")  # a context is named after its API host
    assert saved["current"] == name
    mine = saved["contexts"][name]
    assert mine["apihost"] == server.url and mine["namespace"] == "guest"
    assert mine["auth"] == (server.data_dir / "guest.key").read_text().strip()


def test_deploy_creates_the_example(first_deploy: Result) -> None:
    assert first_deploy.code == 0, first_deploy.err
    assert "+ package hello" in first_deploy.out
    assert "+ function hello/hello" in first_deploy.out
    assert "+ function hello/greet" in first_deploy.out
    assert "Deployed: 3 created" in first_deploy.out
    assert "created function hello/hello (0.0.1)" in first_deploy.err  # progress


def test_second_deploy_changes_nothing(server: LiveServer, first_deploy: Result) -> None:
    result = server.ok("deploy", str(EXAMPLE))
    assert "Nothing changed: 1 package, 2 functions already up to date." in result.out
    doc = json.loads(server.ok("deploy", str(EXAMPLE), "--json").out)
    assert doc["changed"] is False and doc["results"] == []
    assert doc["summary"] == {"create": 0, "update": 0, "unchanged": 3, "delete": 0}
    versions = json.loads(server.ok("fn", "get", "hello/hello", "--json").out)["version"]
    assert versions == "0.0.1"  # no version bump


def test_plan_of_unchanged_project(server: LiveServer, first_deploy: Result) -> None:
    result = server.ok("plan", str(EXAMPLE))
    assert "No changes: 1 package, 2 functions up to date." in result.out


def test_plan_lists_updates_creates_and_deletes(
    server: LiveServer, first_deploy: Result, tmp_path: Path
) -> None:
    project = tmp_path / "hello"
    shutil.copytree(EXAMPLE, project)
    yml = project / "project.yml"
    text = yml.read_text().replace("memory: 128", "memory: 256")
    yml.write_text(text[: text.index("      - name: greet")])  # greet is dropped...
    shutil.rmtree(project / "packages" / "hello" / "greet")
    (project / "packages" / "hello" / "extra.py").write_text("def main(args):\n    return {}\n")
    doc = json.loads(server.ok("plan", str(project), "--prune", "--json").out)
    changes = {(c["action"], c["name"]): c["reasons"] for c in doc["changes"]}
    assert changes[("update", "hello/hello")] == ["limits.memory 128 → 256"]
    assert ("create", "hello/extra") in changes
    assert ("delete", "hello/greet") in changes
    without_prune = json.loads(server.ok("plan", str(project), "--json").out)
    assert without_prune["summary"]["delete"] == 0
    # A function deployed by hand in the same namespace is not the project's to prune.
    server.deploy("by-hand", "def main(args):\n    return {}\n")
    shown = server.ok("plan", str(project), "--prune")
    assert "Prune: only what project 'hello' deployed (annotation whisk-managed)" in shown.err
    assert "function by-hand" in shown.err and "- function by-hand" not in shown.out
    assert "- function hello/greet" in shown.out
    # nothing was applied
    assert (
        json.loads(server.ok("fn", "get", "hello/hello", "--json").out)["limits"]["memory"] == 128
    )


def test_invoke(server: LiveServer, first_deploy: Result) -> None:
    result = server.ok("fn", "invoke", "hello/hello", "-p", "name", "Ada")
    assert json.loads(result.out) == {"body": "Hello Ada!"}


def test_logs_of_the_last_activation(server: LiveServer, first_deploy: Result) -> None:
    server.ok("fn", "invoke", "hello/hello", "-p", "name", "Grace")
    result = server.ok("activations", "logs", "--last")
    assert "greeting Grace" in result.out
    assert "stdout:" in result.out
    stripped = server.ok("activations", "logs", "--last", "--strip")
    assert "greeting Grace" in stripped.out.splitlines()


def test_folder_function_with_context(server: LiveServer, first_deploy: Result) -> None:
    result = server.ok("fn", "invoke", "hello/greet", "-p", "name", "Ada")
    assert json.loads(result.out) == {"body": "Greetings, Ada!"}
    logs = server.ok("activations", "logs", "--function", "hello/greet")
    assert "called for Ada" in logs.out
    assert "greet" in logs.out  # context.function_name


def test_invoke_full_and_no_wait(server: LiveServer, first_deploy: Result) -> None:
    full = json.loads(server.ok("fn", "invoke", "hello/hello", "--full", "-p", "n", "1").out)
    assert full["response"]["success"] is True and len(full["activationId"]) == 32
    queued = json.loads(server.ok("fn", "invoke", "hello/hello", "--no-wait").out)
    activation_id = queued["activationId"]
    assert len(activation_id) == 32
    deadline = time.monotonic() + 30
    while True:
        got = server.run("activations", "result", activation_id)
        if got.code == 0 or time.monotonic() > deadline:
            break
        assert "does not exist" in got.err
        time.sleep(0.2)
    assert json.loads(got.out) == {"body": "Hello stranger!"}
    record = json.loads(server.ok("activations", "get", activation_id, "--json").out)
    assert record["activationId"] == activation_id


def test_activations_list(server: LiveServer, first_deploy: Result) -> None:
    items = json.loads(server.ok("activations", "list", "--json").out)
    assert items and all(len(item["activationId"]) == 32 for item in items)
    assert any(item["name"].endswith("hello") for item in items)
    one = json.loads(server.ok("activations", "list", "--limit", "1", "--json").out)
    assert len(one) == 1
    table = server.ok("activations", "list")
    assert "success" in table.out and items[0]["activationId"] in table.out
    assert "cold" in table.out  # the first invocation of each function started cold


def test_listings_in_a_pipe_keep_whole_values(server: LiveServer, first_deploy: Result) -> None:
    items = json.loads(server.ok("activations", "list", "--json").out)
    server.env["COLUMNS"] = "40"  # a narrow terminal's width, but stdout is a pipe
    try:
        listing = server.ok("activations", "list").out.splitlines()
        functions = server.ok("fn", "list").out
    finally:
        server.env["COLUMNS"] = "200"
    assert "…" not in "".join(listing) and "…" not in functions
    assert listing[0].split() == ["datetime", "status", "start", "duration", "id", "name"]
    assert items[0]["activationId"] in listing[1].split()
    assert items[0]["name"] in listing[1] and "success" in "".join(listing)
    assert len(listing) == len(items) + 1
    assert "hello/hello" in functions


def test_failed_activation_exits_non_zero(server: LiveServer, tmp_path: Path) -> None:
    project = tmp_path / "failing"
    (project / "packages" / "default").mkdir(parents=True)
    (project / "packages" / "default" / "boom.py").write_text(
        "def main(args):\n    raise ValueError('kaboom')\n"
    )
    (project / "packages" / "default" / "oops.py").write_text(
        "def main(args):\n    return {'error': 'bad input'}\n"
    )
    server.ok("deploy", str(project))
    result = server.run("fn", "invoke", "oops")
    assert json.loads(result.out) == {"error": "bad input"}
    assert_one_line_error(result, "failed", "application error")
    result = server.run("fn", "invoke", "boom")
    assert result.code == 1 and "Traceback" not in result.err
    logs = server.ok("activations", "logs", "--last")
    assert "kaboom" in logs.out


def test_fn_list_and_get(server: LiveServer, first_deploy: Result) -> None:
    listing = server.ok("fn", "list")
    assert "hello/hello" in listing.out and "hello/greet" in listing.out
    in_package = json.loads(server.ok("fn", "list", "hello", "--json").out)
    assert sorted(item["name"] for item in in_package) == ["greet", "hello"]
    doc = json.loads(server.ok("fn", "get", "hello/hello", "--json").out)
    assert doc["exec"]["kind"].startswith("python:") and "code" not in doc["exec"]
    with_code = server.ok("fn", "get", "hello/hello", "--code")
    assert "def main(args):" in with_code.out


def test_fn_delete(server: LiveServer, first_deploy: Result) -> None:
    assert "Deleted function hello/greet" in server.ok("fn", "delete", "hello/greet").out
    assert_one_line_error(server.run("fn", "get", "hello/greet"))
    assert_one_line_error(server.run("fn", "delete", "hello/greet"))
    # the plan notices it is gone, and a deploy brings it back
    assert "+ function hello/greet" in server.ok("plan", str(EXAMPLE)).out
    assert "Deployed: 1 created" in server.ok("deploy", str(EXAMPLE)).out


def test_unknown_function(server: LiveServer) -> None:
    assert_one_line_error(server.run("fn", "invoke", "no/such"))


def test_new_namespace_and_login(server: LiveServer, first_deploy: Result) -> None:
    created = server.ok("admin", "namespace", "create", "team", "--data-dir", str(server.data_dir))
    auth = created.out.strip()
    assert len(auth.split(":")) == 2
    duplicate = server.run(
        "admin", "namespace", "create", "team", "--data-dir", str(server.data_dir)
    )
    assert_one_line_error(duplicate)
    assert_one_line_error(server.run("login", "--apihost", server.url, "--auth", "bad:key"))
    login = server.ok("login", "--apihost", server.url, "--auth", auth)
    assert "team" in login.out
    saved = json.loads(Path(server.env["WISP_CONFIG"]).read_text())
    name = server.url.removeprefix("http://")  # the same API host: the same context, replaced
    assert saved == {
        "current": name,
        "contexts": {name: {"apihost": server.url, "auth": auth, "namespace": "team"}},
    }
    assert json.loads(server.ok("fn", "list", "--json").out) == []  # guest's are invisible
    assert_one_line_error(server.run("fn", "invoke", "hello/hello"))
