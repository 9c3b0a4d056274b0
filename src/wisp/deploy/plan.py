"""Compare the desired state with the server's and say what a deploy would do.

Each package and function is a create, an update (with the reasons), unchanged,
or — only with ``prune`` — a delete of something the project no longer has. Prune
deletes only what this project deployed (its ``whisk-managed`` mark, as wskdeploy's),
and routes to those functions: other projects' entities in the namespace are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from wisp.deploy.desired import (
    Body,
    DesiredFunction,
    DesiredInvokeConfig,
    DesiredPackage,
    DesiredState,
    managed_by,
)
from wisp.deploy.errors import ProjectError
from wisp.deploy.project import DEFAULT_PACKAGE, PROJECT_FILE
from wisp.deploy.remote import LIST_PAGE, Remote, action_path
from wisp.deploy.routes import ROUTES_PATH, DesiredRoute, delete_params, route_name
from wisp.deploy.triggers import DesiredRule, DesiredTrigger, diff_rule, diff_trigger

Verb = Literal["create", "update", "unchanged", "delete"]
Entity = Literal["package", "function", "invokeConfig", "trigger", "rule", "route"]
# Added by the server: "exec" to every action, "runtime" to one run on another version,
# "rollback" to a version a rollback made.
SERVER_OWNED_ANNOTATIONS = frozenset({"exec", "runtime", "rollback"})
SECRET_ANNOTATIONS = frozenset({"require-whisk-auth"})
MAX_WORKERS = 25  # concurrent requests, as DigitalOcean's deployer does


@dataclass
class Change:
    entity: Entity
    name: str  # "pkg" or "pkg/fn" (or "fn" in the default package)
    verb: Verb
    api_path: str  # relative to /api/v1/namespaces/_/
    body: Body | None = None  # what to PUT (creates and updates)
    reasons: list[str] = field(default_factory=list)
    params: dict[str, str] | None = None  # query of a delete (routes are named by it)

    @property
    def label(self) -> str:
        return f"{self.entity} {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "name": self.name,
            "action": self.verb,
            "reasons": self.reasons,
        }


@dataclass
class Plan:
    changes: list[Change]
    prune: bool = False
    project: str = ""
    # With prune: entities the project lacks that it did not deploy, left alone.
    left_alone: list[str] = field(default_factory=list)

    def of(self, verb: Verb) -> list[Change]:
        return [c for c in self.changes if c.verb == verb]

    @property
    def has_changes(self) -> bool:
        return any(c.verb != "unchanged" for c in self.changes)

    def counts(self) -> dict[str, int]:
        return {verb: len(self.of(verb)) for verb in ("create", "update", "unchanged", "delete")}

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "summary": self.counts(),
            "prune": self.prune,
            "project": self.project,
            "leftAlone": self.left_alone,
        }


def make_plan(
    desired: DesiredState,
    remote: Remote,
    *,
    prune: bool = False,
    workers: int = MAX_WORKERS,
) -> Plan:
    """Fetch the current state of everything the project names, and compare."""
    wanted: list[
        DesiredPackage | DesiredFunction | DesiredInvokeConfig | DesiredTrigger | DesiredRule
    ] = [
        *desired.packages,
        *desired.functions,
        *desired.invoke_configs,
        *desired.triggers,
        *desired.rules,
    ]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        current = list(pool.map(lambda item: remote.find(item.api_path), wanted))
    changes: list[Change] = []
    for item, have in zip(wanted, current, strict=True):
        entity = _ENTITIES[type(item)]
        name = item.label.split(" ", 1)[1]
        if have is None:
            changes.append(Change(entity, name, "create", item.api_path, item.body))
            continue
        diff = _DIFFS[entity]
        reasons = diff(item.body, have)
        verb: Verb = "update" if reasons else "unchanged"
        changes.append(Change(entity, name, verb, item.api_path, item.body, reasons))
    created = {c.name for c in changes if c.entity == "function" and c.verb == "create"}
    plan = Plan(changes, prune, desired.project)
    deletions: list[Change] = []
    ours: set[str] = {fn.path for fn in desired.functions}
    if prune:
        deletions = _deletions(desired, remote, plan.left_alone)
        ours |= {c.name for c in deletions if c.entity == "function"}
    changes.extend(
        _route_changes(desired.routes, remote, created, prune, workers, ours, plan.left_alone)
    )
    changes.extend(deletions)
    return plan


def _route_changes(
    routes: list[DesiredRoute],
    remote: Remote,
    created: set[str],
    prune: bool,
    workers: int,
    ours: set[str],
    left_alone: list[str] | None = None,
) -> list[Change]:
    """Routes are compared by the server (``dryRun``): only it can check a password
    against its hash, so only it can tell whether a route would change."""
    if not routes and not prune:
        return []
    listed = remote.get(ROUTES_PATH)
    have = {
        (str(r.get("basePath")), str(r.get("path")), str(r.get("method"))): r
        for r in (listed if isinstance(listed, list) else [])
        if isinstance(r, dict)
    }

    def one(route: DesiredRoute) -> Change:
        function = route.function.removeprefix(f"{DEFAULT_PACKAGE}/")
        if function in created:
            # The dry run would refuse a function that does not exist yet; this
            # deploy creates it, so the route is put without asking.
            if route.key not in have:
                return Change("route", route.name, "create", ROUTES_PATH, route.body)
            reasons = [f"function → {function} (new)"]
            return Change("route", route.name, "update", ROUTES_PATH, route.body, reasons)
        try:
            answer = remote.put(ROUTES_PATH, route.body, {"dryRun": "true"})
        except Exception as exc:  # the server's 4xx names the field; add where it is
            raise ProjectError(f"{PROJECT_FILE}: {route.where}: {exc}") from exc
        answer = answer if isinstance(answer, dict) else {}
        if not answer.get("exists"):
            return Change("route", route.name, "create", ROUTES_PATH, route.body)
        reasons = [str(r) for r in answer.get("changes") or []]
        verb: Verb = "update" if reasons else "unchanged"
        return Change("route", route.name, verb, ROUTES_PATH, route.body, reasons)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        changes = list(pool.map(one, routes))
    if prune:
        keep = {route.key for route in routes}
        for key in sorted(set(have) - keep):
            if _route_function(have[key]) not in ours:
                if left_alone is not None:  # a route to another project's function
                    left_alone.append(f"route {route_name(*key)}")
                continue
            change = Change("route", route_name(*key), "delete", ROUTES_PATH)
            change.reasons, change.params = ["not in the project"], delete_params(*key)
            changes.append(change)
    return changes


def _route_function(route: dict[str, Any]) -> str:
    """A listed route's function as a project path (``pkg/fn``, or ``fn`` by default)."""
    function = str(route.get("function", "")).partition(":")[0]
    return function.removeprefix(f"{DEFAULT_PACKAGE}/")


def _deletions(desired: DesiredState, remote: Remote, left_alone: list[str]) -> list[Change]:
    """Functions, then packages, that this project deployed and no longer has."""
    keep_functions = {fn.path for fn in desired.functions}
    keep_packages = {pkg.name for pkg in desired.packages}
    out: list[Change] = []
    for item in _list_all(remote, "actions"):
        path = action_path(item)
        if path in keep_functions:
            continue
        if managed_by(item) != desired.project:
            left_alone.append(f"function {path}")
        else:
            api_path = "actions/" + "/".join(quote(p, safe="") for p in path.split("/"))
            out.append(Change("function", path, "delete", api_path, reasons=["not in the project"]))
    for item in _list_all(remote, "packages"):
        name = str(item.get("name", ""))
        if not name or name in keep_packages:
            continue
        if managed_by(item) != desired.project:
            left_alone.append(f"package {name}")
        else:
            api_path = f"packages/{quote(name, safe='')}"
            out.append(Change("package", name, "delete", api_path, reasons=["not in the project"]))
    return sorted(out, key=lambda c: (c.entity != "function", c.name))


def _list_all(remote: Remote, collection: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = remote.get(collection, {"limit": LIST_PAGE, "skip": len(items)})
        if not isinstance(page, list):
            break
        items.extend(page)
        if len(page) < LIST_PAGE:
            break
    return items


# -- comparing -------------------------------------------------------------------------


def diff_function(want: Body, have: dict[str, Any]) -> list[str]:
    reasons: list[str] = []
    w_exec: dict[str, Any] = want["exec"]
    h_exec: dict[str, Any] = have.get("exec") or {}
    h_kind = _requested_kind(have) or h_exec.get("kind")
    if w_exec["kind"] != h_kind:
        reasons.append(f"kind {h_kind} → {w_exec['kind']}")
    if w_exec["code"] != h_exec.get("code"):
        reasons.append("code changed")
    elif w_exec["binary"] != bool(h_exec.get("binary", False)):
        reasons.append(f"binary {_show(h_exec.get('binary'))} → {_show(w_exec['binary'])}")
    if w_exec["main"] != (h_exec.get("main") or "main"):
        reasons.append(f"main {h_exec.get('main')} → {w_exec['main']}")
    reasons += _diff_parameters(want.get("parameters", []), have.get("parameters"))
    reasons += _diff_annotations(want.get("annotations", []), have.get("annotations"))
    h_limits: dict[str, Any] = have.get("limits") or {}
    # Only the limits the project sets are compared: the others are the server's
    # defaults, which the project does not own.
    for key, value in (want.get("limits") or {}).items():
        if h_limits.get(key) != value:
            reasons.append(f"limits.{key} {_show(h_limits.get(key))} → {value}")
    return reasons


def _requested_kind(have: dict[str, Any]) -> str | None:
    """The kind a function asked for when the server runs it on another version."""
    for item in have.get("annotations") or []:
        if isinstance(item, dict) and item.get("key") == "runtime":
            value = item.get("value")
            requested = value.get("requested") if isinstance(value, dict) else None
            if isinstance(requested, str):
                return requested
    return None


def diff_package(want: Body, have: dict[str, Any]) -> list[str]:
    reasons = _diff_parameters(want.get("parameters", []), have.get("parameters"))
    reasons += _diff_annotations(want.get("annotations", []), have.get("annotations"))
    if bool(want.get("publish", False)) != bool(have.get("publish", False)):
        reasons.append(f"shared {_show(have.get('publish'))} → {_show(want.get('publish'))}")
    return reasons


def diff_invoke_config(want: Body, have: dict[str, Any]) -> list[str]:
    """Both sides are whole, normalised configs (the project's was parsed as the
    server parses a PUT), so every field is compared."""
    reasons: list[str] = []
    for key in sorted(want.keys() | have.keys()):
        if want.get(key) != have.get(key):
            reasons.append(f"invokeConfig.{key} {_show(have.get(key))} → {_show(want.get(key))}")
    return reasons


def _as_dict(items: Iterable[Any] | None, keep: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if isinstance(item, dict) and "key" in item and keep(item):
            out[str(item["key"])] = item.get("value")
    return out


def _diff_parameters(want: list[dict[str, Any]], have: list[dict[str, Any]] | None) -> list[str]:
    reasons: list[str] = []
    for label, init in (("parameters", False), ("environment", True)):

        def keep(item: dict[str, Any], init: bool = init) -> bool:
            return bool(item.get("init", False)) == init

        # Values are not shown: parameters and environment often hold secrets.
        reasons += _diff_mapping(label, _as_dict(want, keep), _as_dict(have, keep), show=False)
    return reasons


def _diff_annotations(want: list[dict[str, Any]], have: list[dict[str, Any]] | None) -> list[str]:
    def keep(item: dict[str, Any]) -> bool:
        return item.get("key") not in SERVER_OWNED_ANNOTATIONS

    return _diff_mapping("annotations", _as_dict(want, keep), _as_dict(have, keep), show=True)


def _diff_mapping(label: str, want: dict[str, Any], have: dict[str, Any], show: bool) -> list[str]:
    reasons: list[str] = []
    for key in sorted(want.keys() | have.keys()):
        if key not in have:
            reasons.append(f"{label}.{key} added")
        elif key not in want:
            reasons.append(f"{label}.{key} removed")
        elif want[key] != have[key]:
            if show and key not in SECRET_ANNOTATIONS:
                reasons.append(f"{label}.{key} {_show(have[key])} → {_show(want[key])}")
            else:
                reasons.append(f"{label}.{key} changed")
    return reasons


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


_ENTITIES: dict[type, Entity] = {
    DesiredPackage: "package",
    DesiredFunction: "function",
    DesiredInvokeConfig: "invokeConfig",
    DesiredTrigger: "trigger",
    DesiredRule: "rule",
}
_DIFFS: dict[Entity, Callable[[Body, dict[str, Any]], list[str]]] = {
    "package": diff_package,
    "function": diff_function,
    "invokeConfig": diff_invoke_config,
    "trigger": diff_trigger,
    "rule": diff_rule,
}
