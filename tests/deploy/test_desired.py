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
    ]
    assert "limits" not in fn.body  # the server's defaults apply
