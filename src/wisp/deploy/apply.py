"""Carry out a plan: packages first, then functions (many at once), then deletes.

A failure of one item does not stop the others; every outcome is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from wisp.deploy.plan import MAX_WORKERS, Change, Plan
from wisp.deploy.remote import Remote

OVERWRITE = {"overwrite": "true"}


@dataclass
class Outcome:
    change: Change
    ok: bool
    error: str = ""
    version: str = ""
    build_log: str = ""  # output of the server-side build of a function, if it had one
    api_keys: list[str] = field(default_factory=list)  # made by the server for a route

    def to_json(self) -> dict[str, Any]:
        doc = self.change.to_json()
        doc.update(ok=self.ok)
        if self.version:
            doc["version"] = self.version
        if self.error:
            doc["error"] = self.error
        if self.build_log:
            doc["build_log"] = self.build_log
        if self.api_keys:
            doc["apiKeys"] = self.api_keys
        return doc


Progress = Callable[[Outcome], None]


def apply_plan(
    plan: Plan, remote: Remote, *, workers: int = MAX_WORKERS, progress: Progress | None = None
) -> list[Outcome]:
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> Outcome:
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
        return outcome

    def run(changes: list[Change], step: Callable[[Change], Outcome]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for outcome in pool.map(lambda c: _guard(step, c), changes):
                record(outcome)

    puts = [c for c in plan.changes if c.verb in ("create", "update")]
    run([c for c in puts if c.entity == "package"], lambda c: _put(remote, c))
    failed_packages = {o.change.name for o in outcomes if not o.ok}
    functions: list[Change] = []
    for change in (c for c in puts if c.entity == "function"):
        package, slash, _ = change.name.partition("/")
        if slash and package in failed_packages:
            record(Outcome(change, False, f"package {package} was not deployed"))
        else:
            functions.append(change)
    run(functions, lambda c: _put(remote, c))
    failed_functions = {
        o.change.name for o in outcomes if not o.ok and o.change.entity == "function"
    }
    configs: list[Change] = []
    for change in (c for c in puts if c.entity == "invokeConfig"):
        if change.name in failed_functions:
            record(Outcome(change, False, f"function {change.name} was not deployed"))
        else:
            configs.append(change)
    run(configs, lambda c: _put(remote, c))
    # A rule names its trigger and function, so both must exist first.
    run([c for c in puts if c.entity == "trigger"], lambda c: _put(remote, c))
    run([c for c in puts if c.entity == "rule"], lambda c: _put(remote, c))
    # A route names its function, so it is put after functions and deleted before.
    run([c for c in puts if c.entity == "route"], lambda c: _put(remote, c))
    # An OpenWhisk package can only be deleted once it is empty.
    deletes = plan.of("delete")
    run([c for c in deletes if c.entity == "route"], lambda c: _delete(remote, c))
    run([c for c in deletes if c.entity == "function"], lambda c: _delete(remote, c))
    run([c for c in deletes if c.entity == "package"], lambda c: _delete(remote, c))
    return outcomes


def _guard(step: Callable[[Change], Outcome], change: Change) -> Outcome:
    try:
        return step(change)
    except Exception as exc:  # one item failing must not hide the others' outcomes
        return Outcome(change, False, str(exc) or type(exc).__name__)


def _put(remote: Remote, change: Change) -> Outcome:
    answer = remote.put(change.api_path, change.body, OVERWRITE)
    if not isinstance(answer, dict):
        return Outcome(change, True)
    build = answer.get("build")
    log = str(build.get("log", "")) if isinstance(build, dict) else ""
    # A generated API key is shown only in this answer: the deploy must pass it on.
    keys = [str(k) for k in answer.get("apiKeys") or []]
    return Outcome(
        change, True, version=str(answer.get("version", "")), build_log=log, api_keys=keys
    )


def _delete(remote: Remote, change: Change) -> Outcome:
    remote.delete(change.api_path, change.params)
    return Outcome(change, True)
