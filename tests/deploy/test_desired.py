from __future__ import annotations

import pytest

from tests.deploy.conftest import MakeProject
from tests.deploy.fake_server import RUNTIMES
from wisp.deploy.desired import Runtimes, desired_state
from wisp.deploy.errors import ProjectError
from wisp.deploy.project import load_project

RUNTIME_TABLE = Runtimes(RUNTIMES)


def test_runtimes_resolve_default_and_exact_kinds() -> None:
    assert RUNTIME_TABLE.resolve("python:default") == "python:3.11"
    assert RUNTIME_TABLE.resolve("python") == "python:3.11"
    assert RUNTIME_TABLE.resolve("python:3.11") == "python:3.11"
    assert RUNTIME_TABLE.resolve("python:2.7") is None
    assert RUNTIME_TABLE.resolve("nodejs:default") is None


def test_unknown_runtime_names_the_key(make_project: MakeProject) -> None:
    root = make_project(
        "packages: [{name: p, functions: [{name: f, runtime: 'python:2.7'}]}]\n",
        {"packages/p/f.py": ""},
    )
    with pytest.raises(ProjectError) as info:
        desired_state(load_project(root, environ={}), RUNTIME_TABLE)
    assert info.value.message == (
        "project.yml: packages[0].functions[0].runtime: 'python:2.7' is not offered by the "
        "server; available: python:3.11"
    )


def test_extension_without_a_runtime_is_an_error(make_project: MakeProject) -> None:
    root = make_project(None, {"packages/p/f.js": "function main() {}"})
    with pytest.raises(ProjectError, match="no nodejs runtime on the server for p/f"):
        desired_state(load_project(root, environ={}), RUNTIME_TABLE)


def test_default_package_parameters_travel_with_each_function(make_project: MakeProject) -> None:
    root = make_project(
        """
        parameters: {a: 1}
        packages:
          - name: default
            environment: {E: x}
            functions:
              - name: f
                webSecure: token
                web: false
        """,
        {"packages/default/f.py": "def main(args): return args\n"},
    )
    state = desired_state(load_project(root, environ={}), RUNTIME_TABLE)
    assert state.packages == []
    [fn] = state.functions
    assert fn.api_path == "actions/f"
    assert fn.body["parameters"] == [
        {"key": "a", "value": 1},
        {"key": "E", "value": "x", "init": True},
    ]
    assert fn.body["annotations"] == [
        {"key": "web-export", "value": False},
        {"key": "raw-http", "value": False},
        {"key": "final", "value": False},
        {"key": "require-whisk-auth", "value": "token"},
        # What this project deployed, so that --prune deletes only that.
        {"key": "whisk-managed", "value": {"projectName": root.name, "file": "project.yml"}},
    ]
    assert "limits" not in fn.body  # the server's defaults apply


def test_a_kind_run_on_another_version_is_sent_as_asked_with_a_warning() -> None:
    table = Runtimes(
        {
            "go": [
                {"kind": "go:1.19", "default": True, "version": "1.19.8"},
                {"kind": "go:1.20", "default": False, "alias": "go:1.19", "version": "1.19.8"},
            ]
        }
    )
    # The server records what was asked and annotates what ran; the plan compares
    # the asked kind with the function's ``runtime`` annotation.
    assert table.resolve("go:1.20") == "go:1.20"
    assert table.warnings == [
        "go:1.20 is not installed on the server; go:1.19 (1.19.8) runs it instead"
    ]


def test_a_kind_of_a_language_the_server_lacks_names_the_package(make_project: MakeProject) -> None:
    root = make_project(
        "packages: [{name: p, functions: [{name: f, runtime: 'php:8.0'}]}]\n",
        {"packages/p/f.php": "<?php function main(array $a): array { return $a; }"},
    )
    with pytest.raises(
        ProjectError,
        match=r"'php:8.0' needs PHP, which is not installed on the server \(the Debian package php-cli",
    ):
        desired_state(load_project(root, environ={}), RUNTIME_TABLE)
