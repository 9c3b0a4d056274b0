"""End to end: a real `wisp server`, projects deployed and invoked with the real `wisp`.

The tests run in file order against one server and build on each other.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer
from tests.runtimes.conftest import kind_of
from wisp.runtimes import DOCUMENTED

pytestmark = pytest.mark.slow

HELLO_JS = """function main(params) {
  console.log('greeting', params.name);
  return {body: 'Hello ' + (params.name || 'stranger') + '!'};
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("runtimes-e2e")) as live:
        yield live


@pytest.fixture(scope="module")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind_of("nodejs")
    root = tmp_path_factory.mktemp("node-project")
    pkg = root / "packages" / "node"
    (pkg / "bundle" / "node_modules" / "shout").mkdir(parents=True)
    (pkg / "hello.js").write_text(HELLO_JS)
    (pkg / "old.js").write_text(
        "exports.main = (event, context) => ({fn: context.functionName});\n"
    )
    (pkg / "bundle" / "package.json").write_text('{"name": "bundle", "main": "src/index.js"}')
    (pkg / "bundle" / "src").mkdir()
    (pkg / "bundle" / "src" / "index.js").write_text(
        "const shout = require('shout');\nexports.main = (a) => ({text: shout(a.text || 'hi')});\n"
    )
    (pkg / "bundle" / "node_modules" / "shout" / "index.js").write_text(
        "module.exports = (s) => s.toUpperCase() + '!';\n"
    )
    (root / "project.yml").write_text(
        "packages:\n  - name: node\n    functions:\n      - name: old\n        runtime: nodejs:18\n"
    )
    return root


def test_api_lists_only_installed_runtimes(server: LiveServer) -> None:
    runtimes = httpx.get(f"{server.url}/api/v1").json()["runtimes"]
    node = kind_of("nodejs")
    kinds = {entry["kind"]: entry for entries in runtimes.values() for entry in entries}
    assert kinds[node]["default"] is True
    if node != "nodejs:18":
        assert kinds["nodejs:18"] == {
            "kind": "nodejs:18",
            "default": False,
            "deprecated": True,
            "alias": node,
            "version": kinds[node]["version"],
        }
    assert "java" not in runtimes and "ruby" not in runtimes


def test_deploy_node_project_warns_about_the_alias(server: LiveServer, node_project: Path) -> None:
    result = server.ok("deploy", str(node_project))
    node = kind_of("nodejs")
    if node != "nodejs:18":
        assert f"nodejs:18 is not installed on the server; {node} (" in result.err
    assert "4 created" in result.out  # the package and three functions
    again = server.ok("deploy", str(node_project))
    assert "Nothing changed" in again.out
    fn = json.loads(server.ok("fn", "get", "node/old", "--json").out)
    assert fn["exec"]["kind"] == node


def test_a_documented_kind_of_another_version_is_annotated_on_each_activation(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    python = kind_of("python")
    asked = next(k for k in DOCUMENTED["python"] if k != python)
    root = tmp_path_factory.mktemp("py-old")
    (root / "packages" / "old").mkdir(parents=True)
    (root / "packages" / "old" / "hi.py").write_text("def main(args):\n    return {'ok': 1}\n")
    (root / "project.yml").write_text(
        f"packages:\n  - name: old\n    functions:\n      - name: hi\n        runtime: '{asked}'\n"
    )
    result = server.ok("deploy", str(root))
    assert f"{asked} is not installed on the server; {python} (" in result.err
    assert "Nothing changed" in server.ok("deploy", str(root)).out
    fn = json.loads(server.ok("fn", "get", "old/hi", "--json").out)
    ran = {"requested": asked, "kind": python}
    assert {"key": "runtime", "value": ran} in fn["annotations"]
    record = json.loads(server.ok("fn", "invoke", "old/hi", "--full").out)
    annotations = {a["key"]: a["value"] for a in record["annotations"]}
    assert annotations["runtime"] == ran | {"version": platform.python_version()}


def test_invoke_node_functions(server: LiveServer) -> None:
    result = json.loads(server.ok("fn", "invoke", "node/hello", "-p", "name", "Ada").out)
    assert result == {"body": "Hello Ada!"}
    result = json.loads(server.ok("fn", "invoke", "node/bundle", "-p", "text", "wisp").out)
    assert result == {"text": "WISP!"}
    result = json.loads(server.ok("fn", "invoke", "node/old").out)
    assert result == {"fn": "node/old"}


def test_node_logs_and_warm_reuse(server: LiveServer) -> None:
    record = json.loads(server.ok("fn", "invoke", "node/hello", "-p", "name", "Bob", "--full").out)
    keys = {a["key"] for a in record["annotations"]}
    assert "initTime" not in keys  # warm: the instance of the first invoke
    logs = server.ok("activations", "logs", record["activationId"]).out
    assert "greeting Bob" in logs


def test_go_example_is_compiled_on_deploy(server: LiveServer) -> None:
    kind_of("go")
    example = Path(__file__).resolve().parents[2] / "examples" / "go-hello"
    result = server.ok("deploy", str(example))
    assert "go build" in result.err  # the build log, shown by wisp deploy
    assert "Nothing changed" in server.ok("deploy", str(example)).out
    out = json.loads(server.ok("fn", "invoke", "hello/hello", "-p", "name", "Ada").out)
    assert out == {"body": "Hello Ada!"}


def test_python_requirements_are_installed_on_deploy(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("py-deps")
    fn = root / "packages" / "deps" / "uses_six"
    fn.mkdir(parents=True)
    # The installed package imports, with the standard modules it needs (__future__).
    (fn / "__main__.py").write_text(
        "import six\n\ndef main(args):\n"
        "    return {'six': six.__version__ == '1.16.0' and six.PY3}\n"
    )
    (fn / "requirements.txt").write_text("six==1.16.0\n")
    result = server.ok("deploy", str(root))
    assert "pip install" in result.err or "cached install" in result.err
    out = json.loads(server.ok("fn", "invoke", "deps/uses_six").out)
    assert out == {"six": True}


def test_failing_build_fails_only_that_function(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("bad-build")
    fn = root / "packages" / "builds" / "broken"
    fn.mkdir(parents=True)
    (fn / "__main__.py").write_text("def main(args):\n    return {'v': 1}\n")
    (root / "packages" / "builds" / "fine.py").write_text("def main(args):\n    return {}\n")
    server.ok("deploy", str(root))
    (fn / "__main__.py").write_text("def main(args):\n    return {'v': 2}\n")
    (fn / "build.sh").write_text("echo compiling; exit 7\n")
    failed = server.run("deploy", str(root))
    assert failed.code != 0
    assert "exited with status 7" in failed.err and "compiling" in failed.err
    out = json.loads(server.ok("fn", "invoke", "builds/broken").out)
    assert out == {"v": 1}  # the running version is untouched


def test_php_project_deploys_and_runs(
    server: LiveServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    php = kind_of("php")
    root = tmp_path_factory.mktemp("php-project")
    pkg = root / "packages" / "php"
    (pkg / "site").mkdir(parents=True)
    (pkg / "hello.php").write_text(
        "<?php\nfunction main(array $args): array {\n"
        "    echo 'greeting ', $args['name'] ?? 'stranger', \"\\n\";\n"
        "    return ['body' => 'Hello ' . ($args['name'] ?? 'stranger') . '!'];\n}\n"
    )
    (pkg / "site" / "index.php").write_text(
        "<?php\nrequire __DIR__ . '/lib.php';\n"
        "function main(array $event, object $context): array {\n"
        "    return ['text' => shout($event['text'] ?? 'hi'), 'fn' => $context->functionName];\n}\n"
    )
    (pkg / "site" / "lib.php").write_text(
        "<?php\nfunction shout(string $s): string { return strtoupper($s) . '!'; }\n"
    )
    result = server.ok("deploy", str(root))
    assert "3 created" in result.out  # the package and two functions
    fn = json.loads(server.ok("fn", "get", "php/site", "--json").out)
    assert fn["exec"]["kind"] == php
    out = json.loads(server.ok("fn", "invoke", "php/hello", "-p", "name", "Ada").out)
    assert out == {"body": "Hello Ada!"}
    out = json.loads(server.ok("fn", "invoke", "php/site", "-p", "text", "wisp").out)
    assert out == {"text": "WISP!", "fn": "php/site"}
    record = json.loads(server.ok("fn", "invoke", "php/hello", "-p", "name", "Bo", "--full").out)
    assert "greeting Bo" in server.ok("activations", "logs", record["activationId"]).out


def test_wisp_runtimes_shows_the_mapping(server: LiveServer) -> None:
    python = kind_of("python")
    rows = json.loads(server.ok("runtimes", "--json").out)
    by_kind = {row["kind"]: row for row in rows}
    assert by_kind[python]["runs"] == python and by_kind[python]["default"] is True
    assert by_kind[python]["version"] == platform.python_version()
    for kind in DOCUMENTED["python"]:
        assert by_kind[kind]["runs"] == python
    shown = server.ok("runtimes").out
    asked = next(k for k in DOCUMENTED["python"] if k != python)
    assert any(line.split()[:2] == [asked, python] for line in shown.splitlines())
