"""Scheduled triggers in ``project.yml``: both forms found in the wild, as Wisp
triggers plus the rule that runs the function.

- older: ``{name, sourceType: scheduler, sourceDetails: {cron, withBody}}``
- newer: ``{name, type: scheduled, scheduledDetails: {cron, body}, enabled}``

The details may also set Wisp's ``timezone`` (IANA, default UTC), ``concurrency``
(allow|skip) and ``missed`` (latest|skip). The trigger and its rule are both
named after the trigger; the body becomes the trigger's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from wisp.deploy.errors import ProjectError

Fail = Callable[[str, str], ProjectError]
_OLD_KEYS = {"name", "sourceType", "sourceDetails", "enabled"}
_NEW_KEYS = {"name", "type", "scheduledDetails", "enabled"}
_OLD_DETAILS = {"cron", "withBody", "timezone", "concurrency", "missed"}
_NEW_DETAILS = {"cron", "body", "timezone", "concurrency", "missed"}


@dataclass
class TriggerSpec:
    name: str
    function: str  # the function's path, 'pkg/fn' or 'fn'
    where: str
    cron: str
    timezone: str
    concurrency: str = "allow"
    missed: str = "latest"
    enabled: bool = True
    body: dict[str, Any] = field(default_factory=dict)


def read_triggers(raw: Any, where: str, function: str, fail: Fail) -> list[TriggerSpec]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise fail(where, "must be a list")
    specs = [_read_one(item, f"{where}[{i}]", function, fail) for i, item in enumerate(raw)]
    return specs


def _read_one(raw: Any, where: str, function: str, fail: Fail) -> TriggerSpec:
    # Imported here: the server's models and the cron parser cost `wisp deploy` ~20 ms of
    # start-up, and only projects with triggers need them.
    from wisp.errors import BadRequest
    from wisp.models import CONCURRENCY_MODES, MISSED_POLICIES
    from wisp.triggers.cron import DEFAULT_TIMEZONE, parse

    if not isinstance(raw, dict):
        raise fail(where, "must be a mapping")
    if "sourceType" in raw:
        form, kind_key, kind, details_key, body_key = (
            "older",
            "sourceType",
            "scheduler",
            "sourceDetails",
            "withBody",
        )
        keys, detail_keys = _OLD_KEYS, _OLD_DETAILS
    elif "type" in raw:
        form, kind_key, kind, details_key, body_key = (
            "newer",
            "type",
            "scheduled",
            "scheduledDetails",
            "body",
        )
        keys, detail_keys = _NEW_KEYS, _NEW_DETAILS
    else:
        raise fail(
            where,
            "needs sourceType: scheduler (with sourceDetails) "
            "or type: scheduled (with scheduledDetails)",
        )
    for key in raw:
        if key not in keys:
            raise fail(
                f"{where}.{key}",
                f"unknown key for the {form} trigger form; "
                f"expected one of {', '.join(sorted(keys))}",
            )
    if raw[kind_key] != kind:
        raise fail(
            f"{where}.{kind_key}", f"only {kind!r} triggers are supported (got {raw[kind_key]!r})"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", "is required and must be a string")
    details = raw.get(details_key)
    if not isinstance(details, dict):
        raise fail(f"{where}.{details_key}", "is required: a mapping with cron")
    for key in details:
        if key not in detail_keys:
            raise fail(
                f"{where}.{details_key}.{key}",
                f"unknown key; expected one of {', '.join(sorted(detail_keys))}",
            )
    expression = details.get("cron")
    if not isinstance(expression, str):
        raise fail(f"{where}.{details_key}.cron", "is required: a 5-field cron expression")
    zone = details.get("timezone", DEFAULT_TIMEZONE)
    try:
        schedule = parse(expression, zone)
    except BadRequest as exc:
        raise fail(f"{where}.{details_key}.cron", exc.message) from None
    body = details.get(body_key, {})
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise fail(
            f"{where}.{details_key}.{body_key}", "must be a mapping (the function's arguments)"
        )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail(f"{where}.enabled", "must be true or false")
    return TriggerSpec(
        name=name,
        function=function,
        where=where,
        cron=schedule.expression,
        timezone=zone,
        concurrency=_choice(
            details, "concurrency", CONCURRENCY_MODES, f"{where}.{details_key}", fail
        ),
        missed=_choice(details, "missed", MISSED_POLICIES, f"{where}.{details_key}", fail),
        enabled=enabled,
        body=dict(body),
    )


def _choice(
    details: dict[str, Any], key: str, allowed: tuple[str, ...], where: str, fail: Fail
) -> str:
    value = details.get(key, allowed[0])
    if value not in allowed:
        raise fail(f"{where}.{key}", f"must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


# -- desired state, compared like functions ----------------------------------------------


@dataclass
class DesiredTrigger:
    name: str
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"trigger {self.name}"

    @property
    def api_path(self) -> str:
        return f"triggers/{quote(self.name, safe='')}"


@dataclass
class DesiredRule:
    name: str
    body: dict[str, Any]

    @property
    def label(self) -> str:
        return f"rule {self.name}"

    @property
    def api_path(self) -> str:
        return f"rules/{quote(self.name, safe='')}"


def desired_trigger(spec: TriggerSpec) -> DesiredTrigger:
    return DesiredTrigger(
        spec.name,
        {
            "parameters": [{"key": k, "value": v} for k, v in spec.body.items()],
            "schedule": {
                "cron": spec.cron,
                "timezone": spec.timezone,
                "concurrency": spec.concurrency,
                "missed": spec.missed,
            },
            "enabled": spec.enabled,
        },
    )


def desired_rule(spec: TriggerSpec) -> DesiredRule:
    return DesiredRule(
        spec.name, {"trigger": spec.name, "action": spec.function, "status": "active"}
    )


def diff_trigger(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    reasons: list[str] = []
    w_params = {p["key"]: p.get("value") for p in want["parameters"]}
    h_params = {
        p.get("key"): p.get("value") for p in have.get("parameters") or [] if isinstance(p, dict)
    }
    if w_params != h_params:
        reasons.append("body changed")
    h_schedule = have.get("schedule") or {}
    for key, value in want["schedule"].items():
        if h_schedule.get(key) != value:
            reasons.append(f"{key} {h_schedule.get(key)} → {value}")
    if bool(have.get("enabled", True)) != want["enabled"]:
        reasons.append("enabled" if want["enabled"] else "disabled")
    return reasons


def diff_rule(want: dict[str, Any], have: dict[str, Any]) -> list[str]:
    reasons: list[str] = []
    action = have.get("action") or {}
    _, _, package = str(action.get("path", "")).partition("/")
    have_action = f"{package}/{action.get('name')}" if package else str(action.get("name"))
    if have_action != want["action"]:
        reasons.append(f"function {have_action} → {want['action']}")
    if (have.get("trigger") or {}).get("name") != want["trigger"]:
        reasons.append(f"trigger → {want['trigger']}")
    if have.get("status") != want["status"]:
        reasons.append(f"status {have.get('status')} → {want['status']}")
    return reasons
