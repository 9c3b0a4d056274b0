"""requirements.lock against pyproject.toml: stamp the lock, or say where they disagree.

    python3 scripts/lockfile.py stamp   (scripts/lock runs it after resolving)
    python3 scripts/lockfile.py check   (tests/test_lockfile.py runs the same check)

The lock carries a fingerprint of the dependency lists it was resolved from, so that any
edit to them (a new package, a changed bound, a removed extra) shows until `scripts/lock`
is run again; each requirement is also checked against the pinned version, to name it.
Standard library only, but for `packaging` in `check` (pytest brings it).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
EXTRAS = ("dev", "otel")  # the extras the lock includes; scripts/lock resolves the same
STAMP = "# pyproject-dependencies-sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def fingerprint(pyproject: Path = PYPROJECT) -> str:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    wanted = {
        "requires-python": project.get("requires-python", ""),
        "dependencies": project.get("dependencies", []),
        "extras": {name: extras.get(name, []) for name in EXTRAS},
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()


def pins(lock: Path = LOCK) -> dict[str, str]:
    """{normalised name: version} of each `name==version` line."""
    found = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            found[_normal(match.group(1))] = match.group(2)
    return found


def problems(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> list[str]:
    """Each way the lock and pyproject.toml disagree, as a sentence (none: they agree)."""
    from packaging.requirements import Requirement

    if not lock.is_file():
        return [f"{lock.name} is missing: run scripts/lock"]
    text = lock.read_text(encoding="utf-8")
    found: list[str] = []
    stamps = [line[len(STAMP) :].strip() for line in text.splitlines() if line.startswith(STAMP)]
    if stamps != [fingerprint(pyproject)]:
        found.append(
            f"pyproject.toml's dependencies changed since {lock.name} was resolved: "
            "run scripts/lock"
        )
    locked = pins(lock)
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own = _normal(project["name"])
    extras = project.get("optional-dependencies", {})
    listed = [*project.get("dependencies", [])]
    for name in EXTRAS:
        listed += extras.get(name, [])
    for line in listed:
        requirement = Requirement(line)
        name = _normal(requirement.name)
        if name == own:
            continue  # e.g. "wisp[otel]" inside dev: the extra's own lines are checked
        if name not in locked:
            found.append(f"{requirement} is in pyproject.toml but not in {lock.name}")
        elif not requirement.specifier.contains(locked[name], prereleases=True):
            found.append(f"{lock.name} pins {name}=={locked[name]}, outside {requirement}")
    return found


def stamp(pyproject: Path = PYPROJECT, lock: Path = LOCK) -> None:
    lines = [
        line for line in lock.read_text(encoding="utf-8").splitlines() if not line.startswith(STAMP)
    ]
    lines.insert(0, STAMP + fingerprint(pyproject))
    lock.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "check"
    if command == "stamp":
        stamp()
    elif command == "check":
        issues = problems()
        for issue in issues:
            print(issue, file=sys.stderr)
        sys.exit(1 if issues else 0)
    else:
        sys.exit(f"usage: {sys.argv[0]} stamp|check")
