"""Named contexts end to end: a second `wisp server` no longer repoints the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error
from tests.live import LiveServer

pytestmark = pytest.mark.slow


def test_a_second_server_leaves_the_current_context_alone(tmp_path: Path) -> None:
    shared = {"WISP_CONFIG": str(tmp_path / "credentials.json")}
    with LiveServer(tmp_path, env=shared, name="first") as first:
        first.deploy("only-on-first", "def main(args):\n    return {'on': 'first'}\n")
        with LiveServer(tmp_path, env=shared, name="second") as second:
            one, two = (s.url.removeprefix("http://") for s in (first, second))
            assert f"created context {one} in " in first.output()
            assert f"not current: {one} is (`wisp context use {two}` switches)" in second.output()
            # The CLI still talks to the first server.
            assert json.loads(first.ok("fn", "invoke", "only-on-first").out) == {"on": "first"}

            listed = json.loads(first.ok("context", "list", "--json").out)
            assert listed == [
                {"name": n, "apihost": s.url, "namespace": "guest", "current": n == one}
                for n, s in sorted([(one, first), (two, second)])
            ]
            table = first.ok("context", "list").out
            assert f"*        {one}" in table and second.key not in table  # keys stay hidden

            assert f"Now using context {two}" in first.ok("context", "use", two).out
            assert_one_line_error(first.run("fn", "invoke", "only-on-first"), "does not exist")
            assert_one_line_error(first.run("context", "use", "nope"), "no context named 'nope'")

            removed = first.ok("context", "remove", two)
            assert f"Removed context {two}" in removed.out
            assert "No context is current now: `wisp context use NAME`" in removed.err
            assert_one_line_error(first.run("fn", "list"), "not logged in")
            first.ok("context", "use", one)
            assert json.loads(first.ok("fn", "invoke", "only-on-first").out) == {"on": "first"}
        # What is left once the second server stopped: the first, current.
        saved = json.loads(Path(shared["WISP_CONFIG"]).read_text())
        assert saved["current"] == one and set(saved["contexts"]) == {one}


def test_login_names_a_context(tmp_path: Path) -> None:
    with LiveServer(tmp_path) as server:
        login = server.ok("login", "--apihost", server.url, "--auth", server.key, "--context", "lab")
        assert "context lab, now current" in login.out
        names = [c["name"] for c in json.loads(server.ok("context", "list", "--json").out)]
        assert names == [server.url.removeprefix("http://"), "lab"]
        assert server.ok("fn", "list", "--json").out.strip() == "[]"
