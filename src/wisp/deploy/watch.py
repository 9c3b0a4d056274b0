"""What changed in a project directory since the last look: the core of ``wisp watch``.

The directory is polled (file times and sizes): no dependency, and it works on
network and container mounts where inotify does not. A changed file inside a
function's source (``packages/<pkg>/<fn>.<ext>`` or that folder) selects that
function; any other change (project.yml, .env, ``lib/``, a new file) selects the
whole project. Either way the deploy plan decides what really differs from the
server, so saving a file unchanged deploys nothing.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from wisp.deploy.desired import DesiredState, Runtimes, desired_state
from wisp.deploy.project import Project

Snapshot = dict[str, tuple[int, int]]  # path relative to the root → (mtime ns, size)

# Not polled: version control and deployer state, caches, and node_modules, which
# can hold tens of thousands of files and is rebuilt from package.json (watched).
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__"})


def snapshot(root: Path) -> Snapshot:
    found: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in SKIPPED_DIRS]
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                info = os.stat(path)
            except OSError:
                continue  # removed while we looked: the next look sees it gone
            found[os.path.relpath(path, root)] = (info.st_mtime_ns, info.st_size)
    return found


def changed_paths(before: Snapshot, after: Snapshot) -> list[str]:
    """Paths added, removed or modified, sorted."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def affected_functions(project: Project, paths: list[str]) -> set[str] | None:
    """The functions (``pkg/fn``) whose sources hold every changed path, or None when
    some change is outside any function's source (then the whole project is planned)."""
    sources = {
        fn.path: fn.source.path.resolve().relative_to(project.root.resolve())
        for fn in project.functions
    }
    affected: set[str] = set()
    for path in paths:
        changed = Path(path)
        owner = next((fn for fn, src in sources.items() if changed.is_relative_to(src)), None)
        if owner is None:
            return None
        affected.add(owner)
    return affected


def desired_for(project: Project, runtimes: Runtimes, only: set[str] | None) -> DesiredState:
    """The desired state of the whole project, or of just the named functions (their
    packages, triggers and rules come from project.yml, which did not change)."""
    if only is None:
        return desired_state(project, runtimes)
    packages = [
        replace(pkg, functions=[fn for fn in pkg.functions if fn.path in only])
        for pkg in project.packages
    ]
    partial = desired_state(replace(project, packages=packages), runtimes)
    return DesiredState(packages=[], functions=partial.functions)
