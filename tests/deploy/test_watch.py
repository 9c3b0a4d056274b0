"""What `wisp watch` deploys for a set of changed files (in-process, a fake server)."""

from __future__ import annotations

import os

from tests.deploy.conftest import MakeProject
from tests.deploy.fake_server import RUNTIMES, FakeServer
from wisp.deploy.apply import apply_plan
from wisp.deploy.desired import Runtimes
from wisp.deploy.plan import make_plan
from wisp.deploy.project import load_project
from wisp.deploy.watch import affected_functions, changed_paths, desired_for, snapshot

YML = """
packages:
  - name: web
    functions:
      - name: page
        triggers:
          - name: nightly
            sourceType: scheduler
            sourceDetails: {cron: "0 3 * * *"}
"""
FILES = {
    "packages/web/page.py": "def main(args):\n    return {}\n",
    "packages/web/api/__main__.py": "def main(args):\n    return {}\n",
    "packages/web/api/util.py": "X = 1\n",
    "packages/default/top.py": "def main(args):\n    return {}\n",
    "packages/web/api/node_modules/big/index.js": "module.exports = 1;\n",
    "lib/shared.py": "Y = 2\n",
}


def test_snapshot_sees_edits_additions_and_removals(make_project: MakeProject) -> None:
    root = make_project(YML, FILES)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    before = snapshot(root)
    assert "packages/web/page.py" in before and "project.yml" in before
    assert not any("node_modules" in p or p.startswith(".git") for p in before)
    (root / "packages" / "web" / "page.py").write_text("def main(args):\n    return {'a': 1}\n")
    (root / "packages" / "web" / "new.py").write_text("")
    os.remove(root / "lib" / "shared.py")
    assert changed_paths(before, snapshot(root)) == [
        "lib/shared.py",
        "packages/web/new.py",
        "packages/web/page.py",
    ]


def test_changes_map_to_the_functions_that_hold_them(make_project: MakeProject) -> None:
    project = load_project(make_project(YML, FILES))
    assert affected_functions(project, ["packages/web/page.py"]) == {"web/page"}
    assert affected_functions(project, ["packages/web/api/util.py", "packages/default/top.py"]) == {
        "web/api",
        "top",
    }
    # Anything outside a function's source plans the whole project.
    assert affected_functions(project, ["packages/web/page.py", "project.yml"]) is None
    assert affected_functions(project, ["lib/shared.py"]) is None
    assert affected_functions(project, ["packages/web/gone.py"]) is None


def test_only_the_changed_function_is_planned_and_deployed(make_project: MakeProject) -> None:
    root = make_project(YML, FILES)
    server = FakeServer()
    runtimes = Runtimes(RUNTIMES)
    with server.client() as client:
        apply_plan(make_plan(desired_for(load_project(root), runtimes, None), client), client)
        (root / "packages" / "web" / "page.py").write_text("def main(args):\n    return {'a': 1}\n")
        project = load_project(root)
        desired = desired_for(project, runtimes, {"web/page"})
        assert [f.path for f in desired.functions] == ["web/page"]
        assert desired.packages == [] and desired.triggers == [] and desired.rules == []
        server.requests.clear()
        plan = make_plan(desired, client)
        assert [(c.label, c.verb) for c in plan.changes] == [("function web/page", "update")]
        apply_plan(plan, client)
        # One read and one write: nothing else in the project was even looked at.
        assert [m for m, _ in server.requests] == ["GET", "PUT"]
