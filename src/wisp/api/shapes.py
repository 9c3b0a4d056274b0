"""OpenWhisk's JSON shapes for entities and activations, built from domain objects."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wisp.models import DEFAULT_PACKAGE, Action, Activation, Alias, Package

Json = dict[str, Any]
# Parameter keys that look like they hold a secret: shown without their value.
SECRET_WORDS = ("secret", "password", "token", "key", "credential", "private")
HIDDEN = "********"


def is_secret(parameter: Json) -> bool:
    """An environment entry ("init": true), or a key that looks like a secret's."""
    key = str(parameter.get("key", "")).lower()
    return parameter.get("init") is True or any(word in key for word in SECRET_WORDS)


def entity_namespace(namespace: str, package: str) -> str:
    # Clients split this on "/" to find the package: "guest" or "guest/pkg".
    return namespace if package == DEFAULT_PACKAGE else f"{namespace}/{package}"


def exec_annotation(action: Action) -> Json:
    return {"key": "exec", "value": action.exec.kind}


def runtime_annotation(action: Action) -> list[Json]:
    """Server-owned: present when the function runs on another version of its language
    than it asked for (``go:1.20`` run as ``go:1.19``)."""
    if not action.exec.requested:
        return []
    value = {"requested": action.exec.requested, "kind": action.exec.kind}
    return [{"key": "runtime", "value": value}]


def action_json(action: Action, *, code: bool = True) -> Json:
    exec_: Json = {
        "kind": action.exec.kind,
        "main": action.exec.main,
        "binary": action.exec.binary,
    }
    if code:
        exec_["code"] = action.exec.code
    doc: Json = {
        "namespace": entity_namespace(action.namespace, action.package),
        "name": action.name,
        "version": action.version,
        "publish": action.publish,
        "exec": exec_,
        "parameters": action.parameters,
        "annotations": [*action.annotations, exec_annotation(action), *runtime_annotation(action)],
        "limits": {
            "timeout": action.limits.timeout,
            "memory": action.limits.memory,
            "logs": action.limits.logs,
            "concurrency": 1,
        },
        "updated": action.updated,
    }
    if action.exec.build:
        # The server-side build this version runs, and its output (wisp deploy shows it).
        doc["build"] = {"name": action.exec.build, "log": action.exec.build_log}
    return doc


def alias_json(alias: Alias) -> Json:
    return {
        "name": alias.alias,
        "function": alias.name
        if alias.package == DEFAULT_PACKAGE
        else f"{alias.package}/{alias.name}",
        "version": alias.version,
        "updated": alias.updated,
        "subject": alias.subject or None,
    }


def version_json(action: Action, current: str, aliases: Sequence[Alias] = ()) -> Json:
    """One kept version of a function: what it runs (no code), who made it when, and
    the aliases that point at it."""
    parameters = [
        {**item, "value": HIDDEN} if is_secret(item) else item for item in action.parameters
    ]
    doc = action_json(action, code=False)
    del doc["namespace"], doc["name"], doc["updated"]
    doc["exec"]["digest"] = action.exec.digest
    doc.pop("build", None)
    if action.exec.build:
        doc["exec"]["build"] = action.exec.build
    return {
        "version": action.version,
        "current": action.version == current,
        "created": action.updated,
        "subject": action.subject or None,  # None: made before Wisp recorded it
        "aliases": [a.alias for a in aliases if a.version == action.version],
        **doc,
        "parameters": parameters,
    }


def action_summary(action: Action) -> Json:
    """A list item: no code, but always the ``exec`` annotation (``nim`` needs it)."""
    return action_json(action, code=False)


def package_json(package: Package, actions: list[Action] | None = None) -> Json:
    doc: Json = {
        "namespace": package.namespace,
        "name": package.name,
        "version": package.version,
        "publish": package.publish,
        "parameters": package.parameters,
        "annotations": package.annotations,
        "binding": {},
        "updated": package.updated,
    }
    if actions is not None:
        doc["actions"] = [
            {"name": a.name, "version": a.version, "annotations": action_summary(a)["annotations"]}
            for a in actions
        ]
    return doc


def activation_summary(record: Activation) -> Json:
    return {
        "activationId": record.activation_id,
        "name": record.name,
        "namespace": record.namespace,
        "version": record.version,
        "start": record.start,
        "end": record.end,
        "duration": record.duration,
        "statusCode": record.status_code,
        "annotations": record.annotations,
        "publish": record.publish,
    }


def activation_result(record: Activation) -> Json:
    response = record.response()
    return {key: response[key] for key in ("result", "status", "success", "size")}
