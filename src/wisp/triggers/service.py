"""Triggers and rules: validation, create-vs-update, and firing.

Documents come in OpenWhisk's shape. A trigger may also carry Wisp's ``schedule``
(``{cron, timezone, concurrency, missed}``) and ``enabled``; the scheduler fires
such triggers on their ticks, exactly as an API ``POST`` fires any trigger: each
active rule invokes its action with the trigger's parameters (overlaid by the
fire's), and a trigger activation records which activations it caused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from wisp.entities import EntityService, check_name, next_version, split_qualifier
from wisp.errors import BadRequest, Conflict, Forbidden, NotFound
from wisp.models import (
    CONCURRENCY_MODES,
    DEFAULT_PACKAGE,
    MISSED_POLICIES,
    RULE_ACTIVE,
    RULE_INACTIVE,
    KeyValues,
    Rule,
    Trigger,
)
from wisp.store.base import Store
from wisp.triggers import cron
from wisp.triggers.shapes import normalise

# Fields naming a function, which may name one version of it (fn:0.0.2, fn:live).
QUALIFIED = frozenset({"action", "function"})
SCHEDULE_KEYS = ("cron", "timezone", "concurrency", "missed")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parameters(field: str, raw: Any) -> KeyValues | None:
    """An object, or OpenWhisk's ``[{key, value}]`` list, as key-values; None when absent."""
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        return [{"key": str(k), "value": v} for k, v in raw.items()]
    if not isinstance(raw, list):
        raise BadRequest(f"{field} must be an object or a list of {{key, value}} objects")
    out: KeyValues = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
            raise BadRequest(f"{field}[{i}] must be an object with a string 'key'")
        out.append({"key": item["key"], "value": item.get("value")})
    return out


def as_dict(values: KeyValues) -> dict[str, Any]:
    return {item["key"]: item.get("value") for item in values}


def entity_ref(field: str, raw: Any, namespace: str, parts: tuple[int, ...]) -> str:
    """A name as clients send it — ``name``, ``pkg/name``, ``/_/pkg/name``,
    ``/ns/name`` — as a path in ``namespace``; another namespace is refused."""
    if not isinstance(raw, str) or not raw.strip("/"):
        raise BadRequest(f"{field} is required: the name of the {field}")
    text = raw.strip()
    segments = text.lstrip("/").split("/") if text.startswith("/") else text.split("/")
    if text.startswith("/"):
        owner, segments = segments[0], segments[1:]
        if owner not in ("_", namespace):
            raise Forbidden(f"{field} {raw!r} is in namespace {owner!r}, not {namespace!r}")
    if len(segments) not in parts or not all(segments):
        raise BadRequest(f"{field} {raw!r} is not a valid {field} name")
    qualifier = ""
    if field in QUALIFIED:  # fn:0.0.2 or fn:live names one version
        segments[-1], qualifier = split_qualifier(segments[-1])
    for segment in segments:
        check_name(field, segment)
    return "/".join(segments) + (f":{qualifier}" if qualifier else "")


def split_action(path: str) -> tuple[str, str]:
    """(package, name) of ``pkg/fn``; the name keeps a qualifier (``fn:live``)."""
    package, slash, name = path.rpartition("/")
    return (package if slash else DEFAULT_PACKAGE), name


class TriggerService:
    """CRUD for triggers and rules. Blocking (store I/O): async callers use a thread."""

    def __init__(
        self, store: Store, entities: EntityService, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.entities = entities
        self.clock = clock

    def _check_function(self, namespace: str, path: str) -> None:
        """The function (and the version or alias a qualifier names) exists."""
        package, qualified = split_action(path)
        self.entities.resolve_target(namespace, package, *split_qualifier(qualified))

    # -- triggers ----------------------------------------------------------
    def put_trigger(
        self, namespace: str, name: str, doc: Mapping[str, Any], *, overwrite: bool = False
    ) -> Trigger:
        check_name("trigger", name)
        doc, function = normalise(doc)
        if function is not None:
            # DigitalOcean's trigger names its function: a rule of the trigger's name runs
            # it, as wisp deploy does. Checked first: a missing function changes nothing.
            function = entity_ref("function", function, namespace, (1, 2))
            self._check_function(namespace, function)
        params = parameters("parameters", doc.get("parameters"))
        annotations = parameters("annotations", doc.get("annotations"))
        publish = _optional_bool("publish", doc.get("publish"))
        enabled = _optional_bool("enabled", doc.get("enabled"))
        existing = self.store.get_trigger(namespace, name)
        if existing is not None and not overwrite:
            raise Conflict(f"trigger {name!r} already exists; use overwrite=true to update it")
        base = existing or Trigger(namespace=namespace, name=name)
        trigger = replace(
            base,
            parameters=base.parameters if params is None else params,
            annotations=base.annotations if annotations is None else annotations,
            publish=base.publish if publish is None else publish,
            enabled=base.enabled if enabled is None else enabled,
        )
        if "schedule" in doc:
            trigger = _with_schedule(trigger, doc["schedule"])
        when_changed = _schedule_of(trigger) != (_schedule_of(existing) if existing else None)
        reschedule = existing is None or when_changed or (trigger.enabled and not base.enabled)
        changed = existing is None or _content(trigger) != _content(existing) or reschedule
        if changed:
            if reschedule:
                trigger.next_run_at = self._first_run(trigger)
            if existing is not None:
                trigger.version = next_version(existing.version)
            trigger.updated = now_ms()
            self.store.put_trigger(trigger, reschedule=reschedule)
        if function is not None:
            self.put_rule(namespace, name, {"trigger": name, "action": function}, overwrite=True)
        return self.get_trigger(namespace, name) if changed else existing or trigger

    def _first_run(self, trigger: Trigger) -> int | None:
        if trigger.cron is None:
            return None
        schedule = cron.parse(trigger.cron, trigger.timezone)
        return round(schedule.next_after(self.clock()) * 1000)

    def set_enabled(self, namespace: str, name: str, enabled: bool) -> Trigger:
        self.get_trigger(namespace, name)
        return self.put_trigger(namespace, name, {"enabled": enabled}, overwrite=True)

    def get_trigger(self, namespace: str, name: str) -> Trigger:
        trigger = self.store.get_trigger(namespace, name)
        if trigger is None:
            raise NotFound(f"trigger {name!r} does not exist")
        return trigger

    def delete_trigger(self, namespace: str, name: str) -> Trigger:
        trigger = self.get_trigger(namespace, name)
        self.store.delete_trigger(namespace, name)
        return trigger

    def list_triggers(self, namespace: str, limit: int, skip: int) -> list[Trigger]:
        return self.store.list_triggers(namespace, limit, skip)

    def rules_of(self, namespace: str, trigger: str) -> list[Rule]:
        return self.store.rules_for_trigger(namespace, trigger)

    # -- rules -------------------------------------------------------------
    def put_rule(
        self, namespace: str, name: str, doc: Mapping[str, Any], *, overwrite: bool = False
    ) -> Rule:
        check_name("rule", name)
        existing = self.store.get_rule(namespace, name)
        if existing is not None and not overwrite:
            raise Conflict(f"rule {name!r} already exists; use overwrite=true to update it")
        trigger = existing.trigger if existing else None
        if doc.get("trigger") is not None or existing is None:
            trigger = entity_ref("trigger", doc.get("trigger"), namespace, (1,))
        action = existing.action if existing else None
        if doc.get("action") is not None or existing is None:
            action = entity_ref("action", doc.get("action"), namespace, (1, 2))
        assert trigger is not None and action is not None
        status = _status(doc.get("status")) if doc.get("status") is not None else None
        annotations = parameters("annotations", doc.get("annotations"))
        if self.store.get_trigger(namespace, trigger) is None:
            raise NotFound(f"trigger {trigger!r} does not exist")
        self._check_function(namespace, action)  # NotFound names it
        base = existing or Rule(namespace=namespace, name=name, trigger=trigger, action=action)
        rule = replace(
            base,
            trigger=trigger,
            action=action,
            status=base.status if status is None else status,
            annotations=base.annotations if annotations is None else annotations,
        )
        if existing is not None:
            if rule == existing:
                return existing
            rule.version = next_version(existing.version)
        rule.updated = now_ms()
        self.store.put_rule(rule)
        return rule

    def set_rule_status(self, namespace: str, name: str, raw: Any) -> Rule:
        rule = self.get_rule(namespace, name)
        status = _status(raw)
        if status == rule.status:
            return rule
        changed = replace(rule, status=status, version=next_version(rule.version), updated=now_ms())
        self.store.put_rule(changed)
        return changed

    def get_rule(self, namespace: str, name: str) -> Rule:
        rule = self.store.get_rule(namespace, name)
        if rule is None:
            raise NotFound(f"rule {name!r} does not exist")
        return rule

    def delete_rule(self, namespace: str, name: str) -> Rule:
        rule = self.get_rule(namespace, name)
        self.store.delete_rule(namespace, name)
        return rule

    def list_rules(self, namespace: str, limit: int, skip: int) -> list[Rule]:
        return self.store.list_rules(namespace, limit, skip)


def _with_schedule(trigger: Trigger, raw: Any) -> Trigger:
    if raw is None:
        return replace(trigger, cron=None, next_run_at=None)
    if not isinstance(raw, Mapping):
        raise BadRequest("schedule must be an object with cron (and timezone, concurrency, missed)")
    unknown = sorted(set(raw) - set(SCHEDULE_KEYS))
    if unknown:
        raise BadRequest(
            f"schedule.{unknown[0]} is not a schedule field; expected {', '.join(SCHEDULE_KEYS)}"
        )
    expression = raw.get("cron", trigger.cron)
    if not isinstance(expression, str):
        raise BadRequest("schedule.cron is required: a 5-field cron expression or @hourly-style")
    zone = raw.get("timezone", trigger.timezone if trigger.cron else cron.DEFAULT_TIMEZONE)
    if not isinstance(zone, str):
        raise BadRequest("schedule.timezone must be an IANA time zone name such as 'Europe/Paris'")
    schedule = cron.parse(expression, zone)
    concurrency = _choice("schedule.concurrency", raw.get("concurrency"), CONCURRENCY_MODES)
    missed = _choice("schedule.missed", raw.get("missed"), MISSED_POLICIES)
    return replace(
        trigger,
        cron=schedule.expression,
        timezone=zone,
        concurrency=concurrency or trigger.concurrency,
        missed=missed or trigger.missed,
    )


def _schedule_of(trigger: Trigger) -> tuple[str | None, str]:
    """What decides the ticks: changing it reschedules."""
    return (trigger.cron, trigger.timezone)


def _content(t: Trigger) -> tuple[Any, ...]:
    return (
        t.parameters,
        t.annotations,
        t.publish,
        t.enabled,
        t.cron,
        t.timezone,
        t.concurrency,
        t.missed,
    )


def _choice(field: str, raw: Any, allowed: tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    if raw not in allowed:
        raise BadRequest(f"{field} must be one of {', '.join(allowed)} (got {raw!r})")
    return str(raw)


def _status(raw: Any) -> str:
    if raw not in (RULE_ACTIVE, RULE_INACTIVE):
        raise BadRequest(f"status must be {RULE_ACTIVE!r} or {RULE_INACTIVE!r} (got {raw!r})")
    return str(raw)


def _optional_bool(field: str, raw: Any) -> bool | None:
    if raw is None or isinstance(raw, bool):
        return raw
    raise BadRequest(f"{field} must be true or false (got {raw!r})")
