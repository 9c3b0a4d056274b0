"""Versions and rollback end to end: a real server, real sandboxes and the real `wisp`
command. Two versions return different values; rolling back (by the CLI and by the
API) changes what an invoke returns at once, although the other version is warm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error
from tests.live import LiveServer

FN = "hello/hi"
ACTION = "/api/v1/namespaces/_/actions/hello/hi"


def code(value: str) -> str:
    return f"def main(args):\n    return {{'body': {value!r}}}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("rollback"), env={"WISP_STEM_CELLS": "1"}) as live:
        yield live


def answer(server: LiveServer) -> str:
    result = server.ok("fn", "invoke", FN)
    body: str = json.loads(result.out)["body"]
    return body


def test_rollback_by_cli_and_api_switches_what_runs(server: LiveServer) -> None:
    server.deploy(FN, code("one"))
    assert answer(server) == "one"
    server.deploy(FN, code("two"))
    assert answer(server) == "two"  # 0.0.2 is warm now
    server.deploy(FN, code("two"))  # unchanged: no version
    listed = json.loads(server.ok("fn", "versions", FN, "--json").out)
    assert [v["version"] for v in listed] == ["0.0.2", "0.0.1"]

    rolled = server.ok("fn", "rollback", FN)
    assert "from 0.0.2 to 0.0.1" in rolled.out and "version 0.0.3" in rolled.out
    assert answer(server) == "one"

    status, made = server.call("POST", ACTION + "/rollback", {"version": "0.0.2"})
    assert status == 200 and made["version"] == "0.0.4", made
    assert answer(server) == "two"

    rolled = server.ok("fn", "rollback", FN, "--to", "0.0.1", "--json")
    assert json.loads(rolled.out)["version"] == "0.0.5"
    assert answer(server) == "one"
    # The activation says which version ran.
    last = json.loads(server.ok("activations", "get", "--last", "--json").out)
    assert last["version"] == "0.0.5"

    table = server.ok("fn", "versions", FN).out
    assert "0.0.5 (current)" in table and "rollback from 0.0.4 to 0.0.1" in table
    assert "guest" in table


def test_rollback_to_an_unknown_version_names_it(server: LiveServer, tmp_path: Path) -> None:
    server.deploy("lonely", code("only"))
    result = server.run("fn", "rollback", "lonely", "--to", "0.0.9")
    assert_one_line_error(result, "version 0.0.9", "does not exist")
    result = server.run("fn", "rollback", "lonely")
    assert_one_line_error(result, "no version before 0.0.1")
    result = server.run("fn", "rollback", "lonely", "--to", "newest")
    assert_one_line_error(result, "0.0.2")
    result = server.run("fn", "versions", "missing")
    assert_one_line_error(result, "missing")
    assert json.loads(server.ok("fn", "invoke", "lonely").out) == {"body": "only"}


def test_aliases_and_qualified_names_by_cli(server: LiveServer) -> None:
    name = "hello/aliased"
    server.deploy(name, code("one"))
    server.deploy(name, code("two"))
    made = server.ok("fn", "alias", "set", name, "live", "0.0.1")
    assert "hello/aliased:live now runs version 0.0.1" in made.out

    def run(qualified: str) -> str:
        body: str = json.loads(server.ok("fn", "invoke", qualified).out)["body"]
        return body

    assert (run(name + ":live"), run(name), run(name + ":0.0.2")) == ("one", "two", "two")
    record = json.loads(server.ok("fn", "invoke", name + ":live", "--full").out)
    notes = {a["key"]: a["value"] for a in record["annotations"]}
    assert record["version"] == "0.0.1"
    assert notes["executedVersion"] == "0.0.1" and notes["alias"] == "live"

    server.ok("fn", "alias", "set", name, "live", "0.0.2")
    assert run(name + ":live") == "two"
    listed = json.loads(server.ok("fn", "alias", "list", name, "--json").out)
    assert [(a["name"], a["version"]) for a in listed] == [("live", "0.0.2")]
    assert "live" in server.ok("fn", "alias", "list", name).out
    assert "live" in server.ok("fn", "versions", name).out

    assert_one_line_error(server.run("fn", "alias", "set", name, "beta", "0.0.9"), "0.0.9")
    assert_one_line_error(server.run("fn", "alias", "set", name, "0.0.1", "0.0.1"), "alias name")
    server.ok("fn", "alias", "delete", name, "live")
    assert_one_line_error(server.run("fn", "invoke", name + ":live"), "alias 'live'")


def test_a_repointed_alias_and_a_rollback_have_a_warm_instance(server: LiveServer) -> None:
    """Instances are per version: the version an alias (or a rollback) now runs is
    initialised before the answer, so its first call is no cold start."""
    name = "hello/warm"
    server.deploy(name, code("one"))
    server.deploy(name, code("two"))

    def first_call(qualified: str) -> tuple[str, dict[str, object]]:
        record = json.loads(server.ok("fn", "invoke", qualified, "--full").out)
        notes = {a["key"]: a["value"] for a in record["annotations"]}
        return record["response"]["result"]["body"], notes

    status, made = server.call("PUT", ACTION.replace("hi", "warm") + "/aliases/live",
                               {"version": "0.0.1"})  # fmt: skip
    assert status == 200 and made["warm"] is True, made
    body, notes = first_call(name + ":live")
    assert body == "one" and "initTime" not in notes, notes

    rolled = json.loads(server.ok("fn", "rollback", name, "--json").out)
    assert rolled["version"] == "0.0.3" and rolled["warm"] is True
    body, notes = first_call(name)
    assert body == "one" and "initTime" not in notes, notes
    # A version nothing warmed starts cold: what the two checks above rely on.
    body, notes = first_call(name + ":0.0.2")
    assert body == "two" and "initTime" in notes
