"""The shapes a trigger PUT may come in, brought to Wisp's one shape.

Wisp's own: ``{parameters, annotations, publish, schedule: {cron, timezone, concurrency,
missed}, enabled}``. Also accepted, because that is what people already send:

- DigitalOcean's scheduled-trigger API: ``{type: "scheduled", function, is_enabled,
  scheduled_details: {cron, body}}`` (``scheduledDetails`` as in ``project.yml``). The
  ``function`` is run by a rule of the trigger's name, as ``wisp deploy`` does.
- OpenWhisk's alarm feed parameters (``wsk trigger create T --feed
  /whisk.system/alarms/alarm -p cron ... -p trigger_payload ...``) given as the trigger's
  parameters or annotations: ``cron``, ``timezone`` and ``trigger_payload`` become the
  schedule and the trigger's parameters.

Every field Wisp would not act on is a 400 naming it, never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wisp.errors import BadRequest, UnsupportedFields

# What GET returns is fine to send back; these are read-only or informational.
ECHOED = (
    "name",
    "namespace",
    "version",
    "updated",
    "limits",
    "rules",
    "last_run_at",
    "next_run_at",
)
OWN = ("parameters", "annotations", "publish", "schedule", "enabled")
DIGITALOCEAN = ("type", "function", "is_enabled", "scheduled_details", "scheduledDetails")
ALARM_FEEDS = ("/whisk.system/alarms/alarm", "whisk.system/alarms/alarm")
ALARM_USED = ("cron", "timezone", "trigger_payload")
# The alarm feed's other parameters: Wisp's schedules have no start, stop, count or
# one-off date, and no interval feed (``minutes``); a cron expression says it instead.
ALARM_UNSUPPORTED = (
    "startDate",
    "stopDate",
    "maxTriggers",
    "fireOnce",
    "date",
    "minutes",
    "deleteAfterFire",
)
ALARM_INTERNAL = ("lifecycleEvent", "triggerName", "authKey")


def normalise(doc: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Wisp's shape of ``doc``, and the function a rule should run (DigitalOcean's)."""
    unknown = [k for k in doc if k not in (*ECHOED, *OWN, *DIGITALOCEAN)]
    if unknown:
        raise UnsupportedFields(
            unknown,
            "a trigger takes parameters, annotations, publish, schedule and enabled "
            "(or DigitalOcean's type, function, is_enabled and scheduled_details)",
        )
    out = {k: v for k, v in doc.items() if k in OWN}
    function = _digitalocean(doc, out)
    _alarm(out)
    return out, function


def _digitalocean(doc: Mapping[str, Any], out: dict[str, Any]) -> str | None:
    kind = doc.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() != "scheduled"):
        raise BadRequest(f"type must be 'scheduled' (got {kind!r}): the only kind of trigger")
    if doc.get("is_enabled") is not None:
        if "enabled" in doc:
            raise BadRequest("give enabled or is_enabled, not both")
        out["enabled"] = doc["is_enabled"]
    both = [k for k in ("scheduled_details", "scheduledDetails", "schedule") if k in doc]
    if len(both) > 1:
        raise BadRequest(f"give one of {', '.join(both)}, not several")
    details = doc.get("scheduled_details", doc.get("scheduledDetails"))
    if both and both[0] != "schedule":
        field = both[0]
        if not isinstance(details, Mapping):
            raise BadRequest(f"{field} must be an object with cron (and body)")
        extra = [f"{field}.{k}" for k in details if k not in ("cron", "body", "timezone")]
        if extra:
            raise UnsupportedFields(extra, f"{field} takes cron, body and timezone")
        out["schedule"] = {k: details[k] for k in ("cron", "timezone") if k in details}
        body = details.get("body")
        if body is not None:
            if not isinstance(body, Mapping):
                raise BadRequest(f"{field}.body must be an object: the function's arguments")
            if "parameters" in doc:
                raise BadRequest(f"give parameters or {field}.body, not both")
            out["parameters"] = dict(body)
    function = doc.get("function")
    if function is not None and (not isinstance(function, str) or not function.strip("/")):
        raise BadRequest("function must be the name of a function, such as 'pkg/fn'")
    return function


def _alarm(out: dict[str, Any]) -> None:
    """Move OpenWhisk alarm feed parameters to the schedule. In annotations a ``cron`` is
    always a schedule (annotations never reach a function); parameters are the feed's
    only on a trigger annotated with the alarm feed, else they are the event's."""
    annotations = _pairs("annotations", out["annotations"]) if "annotations" in out else []
    params = _pairs("parameters", out["parameters"]) if "parameters" in out else []
    feed = dict(annotations).get("feed")
    if feed is not None and feed not in ALARM_FEEDS:
        raise UnsupportedFields(
            ["annotations.feed"],
            f"Wisp runs no feed actions ({feed!r}); give the trigger a schedule, or the alarm "
            f"feed's cron parameter with the feed {ALARM_FEEDS[0]}",
        )
    keys = (*ALARM_USED, *ALARM_UNSUPPORTED, *ALARM_INTERNAL)
    found: dict[str, tuple[str, Any]] = {}  # alarm parameter -> (where it was, value)
    from_annotations = feed is not None or any(k == "cron" for k, _ in annotations)
    for field, pairs, take in (
        ("annotations", annotations, from_annotations),
        ("parameters", params, feed is not None),
    ):
        if not take:
            continue
        found.update({k: (field, v) for k, v in pairs if k in keys})
        if any(k in keys for k, _ in pairs):
            out[field] = _as_field(out[field], [(k, v) for k, v in pairs if k not in keys])
    if not found and feed is None:
        return
    bad = [f"{found[k][0]}.{k}" for k in found if k in ALARM_UNSUPPORTED]
    if bad:
        raise UnsupportedFields(bad, "Wisp's schedules take cron, timezone and trigger_payload")
    if "cron" not in found:
        raise BadRequest("the alarm feed needs a cron parameter (a 5-field cron expression)")
    if "schedule" in out:
        raise BadRequest("give schedule or the alarm feed's cron parameter, not both")
    schedule = {"cron": found["cron"][1]}
    if "timezone" in found:
        schedule["timezone"] = found["timezone"][1]
    out["schedule"] = schedule
    if "trigger_payload" in found:
        payload = found["trigger_payload"][1]
        if not isinstance(payload, Mapping):
            raise BadRequest("trigger_payload must be an object: the event the trigger fires")
        rest = dict(_pairs("parameters", out.get("parameters") or []))
        out["parameters"] = {**rest, **payload}


def _pairs(field: str, raw: Any) -> list[tuple[str, Any]]:
    if isinstance(raw, Mapping):
        return [(str(k), v) for k, v in raw.items()]
    if not isinstance(raw, list):
        raise BadRequest(f"{field} must be an object or a list of {{key, value}} objects")
    out: list[tuple[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
            raise BadRequest(f"{field}[{i}] must be an object with a string 'key'")
        out.append((item["key"], item.get("value")))
    return out


def _as_field(original: Any, pairs: list[tuple[str, Any]]) -> Any:
    if isinstance(original, Mapping):
        return dict(pairs)
    return [{"key": k, "value": v} for k, v in pairs]
