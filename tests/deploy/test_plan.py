from __future__ import annotations

from pathlib import Path

from tests.deploy.conftest import MakeProject
from tests.deploy.fake_server import RUNTIMES, FakeServer
from wisp.deploy.apply import apply_plan
from wisp.deploy.desired import Runtimes, desired_state
from wisp.deploy.plan import Plan, make_plan
from wisp.deploy.project import load_project

YML = """
packages:
  - name: hello
    parameters: {greeting: Hi}
    environment: {DB: pg}
    functions:
      - name: hello
        runtime: python:default
        environment: {TOKEN: abc}
        limits: {memory: 128}
      - name: greet
"""
FILES = {
    "packages/hello/hello.py": "def main(args):\n    return {'body': 'hi'}\n",
    "packages/hello/greet/__main__.py": "def main(event, context):\n    return {}\n",
    "packages/default/top.py": "def main(args):\n    return {}\n",
}


def plan_for(root: Path, server: FakeServer, prune: bool = False) -> Plan:
    desired = desired_state(load_project(root, environ={}), Runtimes(RUNTIMES))
    return make_plan(desired, server.client(), prune=prune)


def deploy(root: Path, server: FakeServer, prune: bool = False) -> Plan:
    plan = plan_for(root, server, prune)
    outcomes = apply_plan(plan, server.client())
    assert all(o.ok for o in outcomes), outcomes
    return plan


def summary(plan: Plan) -> dict[str, list[str]]:
    return {
        verb: [c.label for c in plan.of(verb)]
        for verb in ("create", "update", "unchanged", "delete")
    }


def test_first_plan_creates_everything(make_project: MakeProject) -> None:
    server = FakeServer()
    plan = plan_for(make_project(YML, FILES), server)
    assert summary(plan) == {
        "create": ["package hello", "function hello/hello", "function hello/greet", "function top"],
        "update": [],
        "unchanged": [],
        "delete": [],
    }
    assert server.writes() == []  # planning never writes


def test_apply_puts_packages_first_then_functions(make_project: MakeProject) -> None:
    server = FakeServer()
    deploy(make_project(YML, FILES), server)
    writes = [p for _, p in server.writes()]
    assert writes[0] == "/api/v1/namespaces/_/packages/hello"
    assert sorted(writes[1:]) == [
        "/api/v1/namespaces/_/actions/hello/greet",
        "/api/v1/namespaces/_/actions/hello/hello",
        "/api/v1/namespaces/_/actions/top",
    ]
    action = server.actions["hello/hello"]["body"]
    assert action["exec"]["kind"] == "python:3.11"  # python:default resolved
    assert {"key": "TOKEN", "value": "abc", "init": True} in action["parameters"]
    assert action["limits"] == {"memory": 128}
    assert {"key": "web-export", "value": True} in action["annotations"]
    assert server.actions["hello/greet"]["body"]["exec"]["binary"] is True
    package = server.packages["hello"]["body"]
    assert package["parameters"] == [
        {"key": "greeting", "value": "Hi"},
        {"key": "DB", "value": "pg", "init": True},
    ]


def test_second_deploy_of_unchanged_project_puts_nothing(make_project: MakeProject) -> None:
    root = make_project(YML, FILES)
    server = FakeServer()
    deploy(root, server)
    server.requests.clear()
    plan = deploy(root, server)
    assert not plan.has_changes
    assert len(plan.of("unchanged")) == 4
    assert server.writes() == []


def test_updates_carry_reasons(make_project: MakeProject) -> None:
    root = make_project(YML, FILES)
    server = FakeServer()
    deploy(root, server)
    (root / "project.yml").write_text(
        YML.replace("memory: 128", "memory: 512")
        .replace("TOKEN: abc", "TOKEN: xyz")
        .replace("greeting: Hi", "greeting: Hello")
    )
    (root / "packages/hello/greet/__main__.py").write_text("def main(e, c):\n    return {1: 2}\n")
    plan = plan_for(root, server)
    reasons = {c.label: c.reasons for c in plan.of("update")}
    assert reasons == {
        "package hello": ["parameters.greeting changed"],
        "function hello/hello": ["environment.TOKEN changed", "limits.memory 128 → 512"],
        "function hello/greet": ["code changed"],
    }
    assert [c.label for c in plan.of("unchanged")] == ["function top"]


def test_web_and_runtime_changes_are_explained(make_project: MakeProject) -> None:
    root = make_project(YML, FILES)
    server = FakeServer()
    deploy(root, server)
    server.actions["hello/hello"]["body"]["exec"]["kind"] = "python:3.10"
    (root / "project.yml").write_text(YML.replace("limits:", "web: raw\n        limits:"))
    [change] = plan_for(root, server).of("update")
    assert change.reasons == ["kind python:3.10 → python:3.11", "annotations.raw-http false → true"]


def test_deletes_only_with_prune(make_project: MakeProject) -> None:
    root = make_project(YML, FILES)
    server = FakeServer()
    deploy(root, server)
    mark = [{"key": "whisk-managed", "value": {"projectName": root.name}}]
    server.packages["old"] = {"body": {"parameters": [], "annotations": mark}, "_version": 1}
    server.actions["old/fn"] = {
        "body": {"exec": {"kind": "python:3.11"}, "annotations": mark},
        "_version": 1,
    }
    server.actions["stray"] = {
        "body": {"exec": {"kind": "python:3.11"}, "annotations": mark},
        "_version": 1,
    }
    assert plan_for(root, server).of("delete") == []
    plan = plan_for(root, server, prune=True)
    assert [c.label for c in plan.of("delete")] == [
        "function old/fn",
        "function stray",
        "package old",
    ]
    server.requests.clear()
    apply_plan(plan, server.client())
    deletes = [p for m, p in server.writes() if m == "DELETE"]
    assert deletes[-1] == "/api/v1/namespaces/_/packages/old"  # after its functions
    assert "old" not in server.packages and "stray" not in server.actions


def test_prune_leaves_alone_what_this_project_did_not_deploy(make_project: MakeProject) -> None:
    root = make_project(YML, FILES)
    server = FakeServer()
    deploy(root, server)
    other = [{"key": "whisk-managed", "value": {"projectName": "someone-else"}}]
    server.actions["theirs"] = {
        "body": {"exec": {"kind": "python:3.11"}, "annotations": other},
        "_version": 1,
    }
    server.actions["by-hand"] = {"body": {"exec": {"kind": "python:3.11"}}, "_version": 1}
    server.packages["shared"] = {"body": {"parameters": [], "annotations": other}, "_version": 1}
    plan = plan_for(root, server, prune=True)
    assert plan.of("delete") == []
    assert plan.project == root.name
    assert sorted(plan.left_alone) == ["function by-hand", "function theirs", "package shared"]
    # What the deploy created carries the mark, so removing it from the project prunes it.
    assert {"key": "whisk-managed", "value": {"projectName": root.name, "file": "project.yml"}} in (
        server.actions["top"]["body"]["annotations"]
    )
    (root / "packages" / "default" / "top.py").unlink()
    assert [c.label for c in plan_for(root, server, prune=True).of("delete")] == ["function top"]


def test_one_failure_does_not_stop_the_others(make_project: MakeProject) -> None:
    server = FakeServer()
    server.fail_puts.add("actions/hello/hello")
    plan = plan_for(make_project(YML, FILES), server)
    outcomes = apply_plan(plan, server.client())
    failed = {o.change.label: o.error for o in outcomes if not o.ok}
    assert failed == {"function hello/hello": "limits.memory out of range"}
    assert set(server.actions) == {"hello/greet", "top"}


def test_functions_of_a_failed_package_are_skipped(make_project: MakeProject) -> None:
    server = FakeServer()
    server.fail_puts.add("packages/hello")
    outcomes = apply_plan(plan_for(make_project(YML, FILES), server), server.client())
    failed = sorted(o.change.label for o in outcomes if not o.ok)
    assert failed == ["function hello/greet", "function hello/hello", "package hello"]
    assert set(server.actions) == {"top"}


def test_a_function_run_on_another_version_is_unchanged_when_asked_the_same() -> None:
    from wisp.deploy.plan import diff_function

    want = {"exec": {"kind": "go:1.20", "code": "c", "binary": False, "main": "main"}}
    have = {
        "exec": {"kind": "go:1.19", "code": "c", "binary": False, "main": "main"},
        "annotations": [
            {"key": "exec", "value": "go:1.19"},
            {"key": "runtime", "value": {"requested": "go:1.20", "kind": "go:1.19"}},
        ],
    }
    assert diff_function(want, have) == []
    want["exec"]["kind"] = "go:1.17"
    assert diff_function(want, have) == ["kind go:1.20 → go:1.17"]
