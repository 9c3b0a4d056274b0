"""The real `wisp` command: help, argument errors and failures are one line, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import Wisp, assert_one_line_error, closed_port


def test_help_lists_the_commands(wisp: Wisp) -> None:
    result = wisp("--help")
    assert result.code == 0
    for command in ("server", "login", "deploy", "plan", "fn", "activations", "admin"):
        assert command in result.out


@pytest.mark.parametrize(
    ("args", "flags"),
    [
        (["server"], ["--host", "--port", "--data-dir"]),
        (["login"], ["--apihost", "--auth"]),
        (["deploy"], ["--env", "--prune", "--json"]),
        (["plan"], ["--env", "--prune", "--json"]),
        (["fn", "invoke"], ["--param", "--param-file", "--no-wait", "--full", "--json"]),
        (["fn", "list"], ["--limit", "--skip", "--json"]),
        (["fn", "get"], ["--code", "--json"]),
        (["activations", "list"], ["--limit", "--skip", "--json"]),
        (["activations", "get"], ["--last", "--json"]),
        (["activations", "result"], ["--last"]),
        (["activations", "logs"], ["--last", "--function"]),
        (["admin", "namespace", "create"], ["--data-dir"]),
    ],
)
def test_subcommand_help(wisp: Wisp, args: list[str], flags: list[str]) -> None:
    result = wisp(*args, "--help")
    assert result.code == 0, result.err
    for flag in flags:
        assert flag in result.out


def test_bare_group_prints_help(wisp: Wisp) -> None:
    result = wisp("fn")
    assert result.code == 0 and "invoke" in result.out


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["nosuch"], ["No such command 'nosuch'"]),
        (["fn", "invoke"], ["Missing argument 'NAME'", "wisp fn invoke --help"]),
        (["fn", "invoke", "x", "-p", "only-key"], ["-p", "requires 2 arguments"]),
        (["deploy", "/no/such/dir"], ["'/no/such/dir' does not exist"]),
        (["fn", "list", "--limit", "500"], ["--limit", "500"]),
        (["activations", "list", "--skip", "-1"], ["--skip"]),
        (["server", "--port", "99999"], ["--port"]),
        (["login", "--apihost", "http://x"], ["Missing option '--auth'"]),
    ],
)
def test_usage_errors(wisp: Wisp, args: list[str], fragments: list[str]) -> None:
    result = wisp(*args)
    assert_one_line_error(result, *fragments)
    assert result.code == 2


def test_not_logged_in(wisp: Wisp) -> None:
    assert_one_line_error(wisp("fn", "list"), "not logged in", "wisp login")


def test_unreachable_server(wisp: Wisp) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = wisp("fn", "list", env={"WISP_APIHOST": url, "WISP_AUTH": "u:k"})
    assert_one_line_error(result, f"cannot reach Wisp at {url}", "is `wisp server` running?")
    assert result.code == 1


def test_login_validates_its_arguments(wisp: Wisp) -> None:
    assert_one_line_error(wisp("login", "--apihost", "http://x", "--auth", "nokey"), "UUID:KEY")
    assert_one_line_error(wisp("login", "--apihost", "x:1", "--auth", "a:b"), "http://")


def test_login_against_unreachable_server_saves_nothing(wisp: Wisp, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert_one_line_error(wisp("login", "--apihost", url, "--auth", "a:b"), "cannot reach")
    assert not (tmp_path / "config" / "credentials.json").exists()


def test_bad_project_is_reported_before_any_request(wisp: Wisp, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "packages" / "p").mkdir(parents=True)
    (project / "packages" / "p" / "f.py").write_text("def main(a): return a\n")
    (project / "project.yml").write_text(
        "packages:\n  - name: p\n    functions:\n      - name: f\n        limits: {memory: big}\n"
    )
    env = {"WISP_APIHOST": f"http://127.0.0.1:{closed_port()}", "WISP_AUTH": "u:k"}
    for command in ("deploy", "plan"):
        result = wisp(command, str(project), env=env)
        assert_one_line_error(
            result, "project.yml: packages[0].functions[0].limits.memory: must be an integer"
        )


def test_unresolved_variable_in_project(wisp: Wisp, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "project.yml").write_text("parameters:\n  key: ${WISP_TEST_UNSET_VAR}\n")
    env = {"WISP_APIHOST": "http://127.0.0.1:1", "WISP_AUTH": "u:k"}
    result = wisp("plan", str(project), env=env)
    assert_one_line_error(result, "project.yml: line 2: ${WISP_TEST_UNSET_VAR} is not set")


def test_bad_param_file(wisp: Wisp, tmp_path: Path) -> None:
    bad = tmp_path / "params.json"
    bad.write_text("[1, 2]")
    env = {"WISP_APIHOST": "http://127.0.0.1:1", "WISP_AUTH": "u:k"}
    result = wisp("fn", "invoke", "f", "--param-file", str(bad), env=env)
    assert_one_line_error(result, "must hold a JSON object")


def test_activation_commands_need_an_id_or_last(wisp: Wisp) -> None:
    env = {"WISP_APIHOST": "http://127.0.0.1:1", "WISP_AUTH": "u:k"}
    assert_one_line_error(wisp("activations", "logs", env=env), "give an activation ID, or --last")
    result = wisp("activations", "get", "abc", "--last", env=env)
    assert_one_line_error(result, "not both")


def test_admin_needs_a_data_dir(wisp: Wisp, tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    result = wisp("admin", "namespace", "create", "team", "--data-dir", str(missing))
    assert_one_line_error(result, "is not a Wisp data directory")


def test_version(wisp: Wisp) -> None:
    result = wisp("--version")
    assert result.code == 0 and "wisp" in result.out


def test_json_error_output_is_not_mixed_into_stdout(wisp: Wisp) -> None:
    result = wisp("fn", "list", "--json")
    assert result.out == ""
    assert_one_line_error(result, "not logged in")
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.out)
