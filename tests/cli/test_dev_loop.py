"""The local dev loop end to end: `wisp init`, then `wisp deploy` or `wisp watch` against
a real `wisp server`, and the functions answering over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli import test_e2e
from tests.cli.conftest import Wisp, assert_one_line_error, wisp_executable
from tests.live import LiveServer
from tests.runtimes.conftest import kind_of

pytestmark = pytest.mark.slow

server = test_e2e.server  # one real `wisp server` for this module
WATCH_BOUND = 10.0  # seconds for a save to be live; generous: the machine is shared


def test_init_refuses_a_non_empty_directory(wisp: Wisp, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    result = wisp("init", str(tmp_path), "--runtime", "python")
    assert_one_line_error(result, f"{tmp_path} is not empty")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # untouched
    assert_one_line_error(wisp("init", str(tmp_path / "notes.txt")), "is a file")
    assert_one_line_error(wisp("init", str(tmp_path / "new"), "--runtime", "ruby"), "'ruby'")


def test_init_into_an_empty_directory(wisp: Wisp, tmp_path: Path) -> None:
    result = wisp("init", str(tmp_path), "--runtime", "php")
    assert result.code == 0, result.err
    assert (tmp_path / "packages" / "sample" / "hello.php").is_file()
    assert "runtime: php:default" in (tmp_path / "project.yml").read_text()
    assert "wisp deploy" in result.out


@pytest.mark.parametrize("runtime", ["python", "nodejs", "php", "go"])
def test_init_project_deploys_and_answers(
    server: LiveServer,
    tmp_path: Path,
    runtime: str,
) -> None:
    if runtime != "python":
        kind_of(runtime)  # skips (fails under CI) without the toolchain
    project = tmp_path / "app"
    server.ok("init", str(project), "--runtime", runtime)
    deployed = server.ok("deploy", str(project))
    assert "function sample/hello" in deployed.out
    out = json.loads(server.ok("fn", "invoke", "sample/hello", "-p", "name", "Ada").out)
    assert out == {"body": "Hello Ada!"}
    fn = json.loads(server.ok("fn", "get", "sample/hello", "--json").out)
    assert fn["exec"]["kind"].startswith(runtime + ":")
    assert "Nothing changed" in server.ok("deploy", str(project)).out


# -- wisp watch --------------------------------------------------------------------------


class Watch:
    """`wisp watch DIR` in the background, its output in a file."""

    def __init__(self, server: LiveServer, directory: Path, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [wisp_executable(), "watch", str(directory)],
                env=server.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, bound: float = 60.0) -> None:
        deadline = time.monotonic() + bound
        while text not in self.output:
            if self.proc.poll() is not None:
                pytest.fail(f"wisp watch exited with {self.proc.returncode}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"wisp watch did not print {text!r} in {bound}s:\n{self.output}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        return self.proc.wait(timeout=20)


@pytest.fixture
def watching(server: LiveServer, tmp_path: Path) -> Iterator[Callable[[Path], Watch]]:
    started: list[Watch] = []

    def start(directory: Path) -> Watch:
        watch = Watch(server, directory, tmp_path / f"watch-{len(started)}.log")
        started.append(watch)
        return watch

    yield start
    for watch in started:
        if watch.proc.poll() is None:
            watch.proc.kill()
            watch.proc.wait()


@pytest.fixture
def invoke(server: LiveServer) -> Iterator[Callable[[str], Any]]:
    with server.client() as http:

        def run(name: str) -> Any:
            url = f"/api/v1/namespaces/_/actions/{name}?blocking=true&result=true"
            return http.post(url, json={}).json()

        yield run


def version(server: LiveServer, name: str) -> str:
    return str(json.loads(server.ok("fn", "get", name, "--json").out)["version"])


def test_watch_redeploys_only_what_changed(
    server: LiveServer,
    tmp_path: Path,
    watching: Callable[[Path], Watch],
    invoke: Callable[[str], Any],
) -> None:
    project = tmp_path / "live"
    pkg = project / "packages" / "live"
    (pkg / "folder").mkdir(parents=True)
    (pkg / "edited.py").write_text("def main(args):\n    return {'v': 1}\n")
    (pkg / "kept.py").write_text("def main(args):\n    return {'kept': True}\n")
    (pkg / "folder" / "__main__.py").write_text(
        "from helper import V\n\ndef main(args):\n    return {'v': V}\n"
    )
    (pkg / "folder" / "helper.py").write_text("V = 1\n")
    watch = watching(project)
    watch.wait_for("deployed 4 of 4 changes")  # the package and three functions
    assert invoke("live/edited") == {"v": 1}
    before = {name: version(server, name) for name in ("live/edited", "live/kept")}

    saved = time.monotonic()
    (pkg / "edited.py").write_text("def main(args):\n    return {'v': 2}\n")
    while (answer := invoke("live/edited")) != {"v": 2}:
        assert time.monotonic() - saved < WATCH_BOUND, (answer, watch.output)
        time.sleep(0.05)
    watch.wait_for("updated function live/edited")
    assert version(server, "live/edited") != before["live/edited"]
    assert version(server, "live/kept") == before["live/kept"]
    assert "kept" not in watch.output.split("changed: packages/live/edited.py", 1)[1]

    # A file inside a folder function redeploys that function.
    (pkg / "folder" / "helper.py").write_text("V = 3\n")
    watch.wait_for("updated function live/folder", WATCH_BOUND)
    assert invoke("live/folder") == {"v": 3}

    # Saving without a change deploys nothing; a broken project.yml is reported
    # and watching goes on.
    (pkg / "kept.py").write_text("def main(args):\n    return {'kept': True}\n")
    watch.wait_for("nothing to deploy", WATCH_BOUND)
    (project / "project.yml").write_text("packages: [\n")
    watch.wait_for("Error: ", WATCH_BOUND)
    (project / "project.yml").unlink()
    (pkg / "edited.py").write_text("def main(args):\n    return {'v': 4}\n")
    watch.wait_for("(0.0.3)", WATCH_BOUND)
    assert invoke("live/edited") == {"v": 4}
    assert version(server, "live/kept") == before["live/kept"]

    assert watch.stop() == 0
    assert watch.output.rstrip().endswith("Stopped watching.")
    assert "Traceback" not in watch.output


def test_watch_of_a_missing_directory_is_a_one_line_error(wisp: Wisp, tmp_path: Path) -> None:
    result = wisp("watch", str(tmp_path / "nowhere"))
    assert_one_line_error(result, "does not exist")
