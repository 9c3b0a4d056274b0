"""Triggers and rules over the OpenWhisk REST API (in-process, FakeInvoker)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette

from tests.api.conftest import ACTIONS, ACTIVATIONS, FakeInvoker, Tenant, hello
from wisp.store.base import Store

TRIGGERS = "/api/v1/namespaces/_/triggers"
RULES = "/api/v1/namespaces/_/rules"


async def setup_rule(
    guest: Tenant, trigger: str = "t", rule: str = "r", action: str = "hello", **body: Any
) -> None:
    assert (await guest.client.put(f"{ACTIONS}/{action}", json=hello())).status_code == 200
    assert (await guest.client.put(f"{TRIGGERS}/{trigger}", json=body)).status_code == 200
    answer = await guest.client.put(
        f"{RULES}/{rule}", json={"trigger": f"/_/{trigger}", "action": f"/_/{action}"}
    )
    assert answer.status_code == 200, answer.text


async def record(guest: Tenant, aid: str) -> dict[str, Any]:
    for _ in range(100):
        answer = await guest.client.get(f"{ACTIVATIONS}/{aid}")
        if answer.status_code == 200:
            doc: dict[str, Any] = answer.json()
            return doc
        await asyncio.sleep(0.01)
    raise AssertionError(f"activation {aid} never recorded")


async def test_trigger_crud_and_parameters_in_both_forms(guest: Tenant) -> None:
    c = guest.client
    created = await c.put(f"{TRIGGERS}/t", json={"parameters": {"a": 1}})
    assert created.status_code == 200
    doc = created.json()
    assert doc["namespace"] == guest.name and doc["name"] == "t"
    assert doc["parameters"] == [{"key": "a", "value": 1}]
    assert doc["enabled"] is True and doc["next_run_at"] is None and "schedule" not in doc
    assert (await c.put(f"{TRIGGERS}/t", json={})).status_code == 409
    updated = await c.put(
        f"{TRIGGERS}/t?overwrite=true", json={"parameters": [{"key": "b", "value": 2}]}
    )
    assert updated.json()["parameters"] == [{"key": "b", "value": 2}]
    assert updated.json()["version"] == "0.0.2"
    same = await c.put(f"{TRIGGERS}/t?overwrite=true", json={})
    assert same.json()["version"] == "0.0.2"
    assert [t["name"] for t in (await c.get(TRIGGERS)).json()] == ["t"]
    assert (await c.get(f"{TRIGGERS}/t")).json()["rules"] == {}
    assert (await c.delete(f"{TRIGGERS}/t")).status_code == 200
    missing = await c.get(f"{TRIGGERS}/t")
    assert missing.status_code == 404 and missing.json()["error"] == "trigger 't' does not exist"


async def test_schedule_shows_next_run_and_bad_cron_is_a_400(guest: Tenant) -> None:
    c = guest.client
    doc = (
        await c.put(
            f"{TRIGGERS}/nightly",
            json={"schedule": {"cron": "0 3 * * *", "timezone": "Europe/Paris"}},
        )
    ).json()
    assert doc["schedule"] == {
        "cron": "0 3 * * *",
        "timezone": "Europe/Paris",
        "concurrency": "allow",
        "missed": "latest",
    }
    assert doc["next_run_at"].endswith(("T01:00:00.000Z", "T02:00:00.000Z"))
    assert doc["last_run_at"] is None
    for body, message in [
        ({"schedule": {"cron": "61 * * * *"}}, "minute field '61': 61 is out of range 0-59"),
        ({"schedule": {"cron": "* * *"}}, "expected 5 fields"),
        ({"schedule": {"cron": "@hourly", "timezone": "Moon/Base"}}, "unknown time zone"),
        ({"schedule": {"cron": "@hourly", "concurrency": "maybe"}}, "concurrency must be one of"),
        ({"schedule": {"cron": "@hourly", "missed": "all"}}, "missed must be one of"),
        ({"schedule": {"crontab": "@hourly"}}, "schedule.crontab is not a schedule field"),
        ({"schedule": "@hourly"}, "schedule must be an object"),
        ({"parameters": 3}, "parameters must be an object or a list"),
        ({"enabled": "yes"}, "enabled must be true or false"),
    ]:
        answer = await c.put(f"{TRIGGERS}/bad", json=body)
        assert answer.status_code == 400, body
        assert message in answer.json()["error"], answer.json()
    assert (await c.get(f"{TRIGGERS}/bad")).status_code == 404


async def test_disabled_triggers_show_no_next_run(guest: Tenant) -> None:
    c = guest.client
    await c.put(f"{TRIGGERS}/t", json={"schedule": {"cron": "@hourly"}})
    off = await c.put(f"{TRIGGERS}/t?overwrite=true", json={"enabled": False})
    assert off.json()["enabled"] is False and off.json()["next_run_at"] is None
    on = await c.put(f"{TRIGGERS}/t?overwrite=true", json={"enabled": True})
    assert on.json()["next_run_at"].endswith(":00:00.000Z")


async def test_fire_invokes_active_rules_with_cause(guest: Tenant, invoker: FakeInvoker) -> None:
    await setup_rule(guest, parameters={"from": "trigger", "x": 1})
    fired = await guest.client.post(f"{TRIGGERS}/t", json={"x": 2})
    assert fired.status_code == 202
    trigger_id = fired.json()["activationId"]
    assert len(invoker.calls) == 1
    call = invoker.calls[0]
    assert call.params == {"from": "trigger", "x": 2}
    assert call.subject == guest.name
    trigger_record = await record(guest, trigger_id)
    assert trigger_record["name"] == "t"
    assert trigger_record["response"]["result"] == {"from": "trigger", "x": 2}
    assert f'"activationId":"{call.activation_id}"' in trigger_record["logs"][0]
    assert f'"rule":"{guest.name}/r"' in trigger_record["logs"][0]
    action_record = await record(guest, call.activation_id)
    assert action_record["cause"] == trigger_id
    listed = (await guest.client.get(ACTIVATIONS)).json()
    assert {a["activationId"] for a in listed} >= {trigger_id, call.activation_id}


async def test_fire_accepts_nims_key_value_list(guest: Tenant, invoker: FakeInvoker) -> None:
    await setup_rule(guest)
    body = {"parameters": [{"key": "name", "value": "Ada"}]}
    assert (await guest.client.post(f"{TRIGGERS}/t", json=body)).status_code == 202
    assert invoker.calls[0].params == {"name": "Ada"}


async def test_fire_with_no_active_rule_is_a_204(guest: Tenant, invoker: FakeInvoker) -> None:
    c = guest.client
    await c.put(f"{TRIGGERS}/lonely", json={})
    assert (await c.post(f"{TRIGGERS}/lonely")).status_code == 204
    await setup_rule(guest)
    off = await c.post(f"{RULES}/r", json={"status": "inactive"})
    assert off.status_code == 200 and off.json()["status"] == "inactive"
    answer = await c.post(f"{TRIGGERS}/t", json={})
    assert answer.status_code == 204 and answer.content == b""
    assert invoker.calls == []
    on = await c.post(f"{RULES}/r", json={"status": "active"})
    assert on.json()["status"] == "active"
    assert (await c.post(f"{TRIGGERS}/t", json={})).status_code == 202
    assert len(invoker.calls) == 1
    assert (await c.post(f"{TRIGGERS}/nope", json={})).status_code == 404


async def test_trigger_get_lists_its_rules(guest: Tenant) -> None:
    await setup_rule(guest)
    await guest.client.post(f"{RULES}/r", json={"status": "inactive"})
    doc = (await guest.client.get(f"{TRIGGERS}/t")).json()
    assert doc["rules"] == {
        f"{guest.name}/r": {"action": {"name": "hello", "path": guest.name}, "status": "inactive"}
    }


async def test_rule_crud_and_validation(guest: Tenant) -> None:
    c = guest.client
    await setup_rule(guest)
    rule = (await c.get(f"{RULES}/r")).json()
    assert rule["status"] == "active"
    assert rule["trigger"] == {"name": "t", "path": guest.name}
    assert rule["action"] == {"name": "hello", "path": guest.name}
    assert [r["name"] for r in (await c.get(RULES)).json()] == ["r"]
    again = await c.put(f"{RULES}/r", json={"trigger": "t", "action": "hello"})
    assert again.status_code == 409
    for body, status, message in [
        ({"trigger": "t"}, 400, "action is required"),
        ({"trigger": "nope", "action": "hello"}, 404, "trigger 'nope' does not exist"),
        ({"trigger": "t", "action": "nope"}, 404, "nope"),
        ({"trigger": "/someone/t", "action": "hello"}, 403, "namespace 'someone'"),
        ({"trigger": "t", "action": "a/b/c"}, 400, "not a valid action name"),
    ]:
        answer = await c.put(f"{RULES}/r2", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert message in answer.json()["error"]
    bad = await c.post(f"{RULES}/r", json={"status": "paused"})
    assert bad.status_code == 400 and "status must be" in bad.json()["error"]
    assert (await c.post(f"{RULES}/nope", json={"status": "active"})).status_code == 404
    assert (await c.delete(f"{RULES}/r")).json()["name"] == "r"
    assert (await c.get(f"{RULES}/r")).status_code == 404


async def test_fires_per_minute_are_limited_per_namespace(
    app: Starlette, guest: Tenant, other: Tenant
) -> None:
    app.state.triggers.limiter.per_minute = 2
    for tenant in (guest, other):
        await tenant.client.put(f"{TRIGGERS}/t", json={})
    assert (await guest.client.post(f"{TRIGGERS}/t")).status_code == 204
    assert (await guest.client.post(f"{TRIGGERS}/t")).status_code == 204
    refused = await guest.client.post(f"{TRIGGERS}/t")
    assert refused.status_code == 429
    assert "Too many trigger fires" in refused.json()["error"]
    assert int(refused.headers["retry-after"]) >= 1
    assert (await other.client.post(f"{TRIGGERS}/t")).status_code == 204


async def test_another_namespaces_triggers_are_not_visible(guest: Tenant, other: Tenant) -> None:
    await guest.client.put(f"{TRIGGERS}/t", json={})
    assert (await other.client.get(f"{TRIGGERS}/t")).status_code == 404
    assert (await other.client.get(TRIGGERS)).json() == []
    path = f"/api/v1/namespaces/{guest.name}/triggers/t"
    assert (await other.client.get(path)).status_code == 403


async def test_rule_action_in_a_package(guest: Tenant, store: Store) -> None:
    c = guest.client
    await c.put("/api/v1/namespaces/_/packages/pkg", json={})
    assert (await c.put(f"{ACTIONS}/pkg/fn", json=hello())).status_code == 200
    await c.put(f"{TRIGGERS}/t", json={})
    rule = (await c.put(f"{RULES}/r", json={"trigger": "t", "action": "/_/pkg/fn"})).json()
    assert rule["action"] == {"name": "fn", "path": f"{guest.name}/pkg"}
    stored = store.get_rule(guest.name, "r")
    assert stored is not None and stored.action == "pkg/fn"


async def test_digitalocean_scheduled_trigger_shape_is_scheduled(guest: Tenant) -> None:
    assert (await guest.client.put(f"{ACTIONS}/hello", json=hello())).status_code == 200
    body = {
        "name": "nightly",
        "function": "hello",
        "type": "SCHEDULED",
        "is_enabled": True,
        "scheduled_details": {"cron": "0 0 * * *", "body": {"name": "Welcome to DO!"}},
    }
    answer = await guest.client.put(f"{TRIGGERS}/nightly", json=body)
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert doc["schedule"]["cron"] == "0 0 * * *" and doc["next_run_at"] is not None
    assert doc["parameters"] == [{"key": "name", "value": "Welcome to DO!"}]
    got = (await guest.client.get(f"{TRIGGERS}/nightly")).json()
    # The function is run by a rule of the trigger's name, as wisp deploy makes.
    assert got["rules"][f"{guest.name}/nightly"]["status"] == "active"
    missing = dict(body, function="nope")
    refused = await guest.client.put(f"{TRIGGERS}/other", json=missing)
    assert refused.status_code == 404
    assert (await guest.client.get(f"{TRIGGERS}/other")).status_code == 404


async def test_openwhisk_alarm_feed_parameters_are_a_schedule(guest: Tenant) -> None:
    # A cron annotation, as the walk-through tried: scheduled, not dropped.
    annotated = await guest.client.put(
        f"{TRIGGERS}/a", json={"annotations": [{"key": "cron", "value": "*/5 * * * *"}]}
    )
    assert annotated.status_code == 200, annotated.text
    assert annotated.json()["schedule"]["cron"] == "*/5 * * * *"
    assert annotated.json()["next_run_at"] is not None
    # wsk trigger create f --feed /whisk.system/alarms/alarm -p cron ... -p trigger_payload ...
    feed = await guest.client.put(
        f"{TRIGGERS}/f",
        json={
            "annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}],
            "parameters": [
                {"key": "cron", "value": "0 9 * * 1"},
                {"key": "timezone", "value": "Europe/Paris"},
                {"key": "trigger_payload", "value": {"who": "team"}},
            ],
        },
    )
    assert feed.status_code == 200, feed.text
    doc = feed.json()
    assert doc["schedule"]["cron"] == "0 9 * * 1"
    assert doc["schedule"]["timezone"] == "Europe/Paris"
    assert doc["parameters"] == [{"key": "who", "value": "team"}]


async def test_trigger_fields_wisp_does_not_act_on_are_named(guest: Tenant) -> None:
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"feeds": 1, "colour": "red"}, ["feeds", "colour"]),
        (
            {
                "annotations": [{"key": "feed", "value": "/whisk.system/alarms/alarm"}],
                "parameters": {"cron": "* * * * *", "stopDate": "2030-01-01", "maxTriggers": 3},
            },
            ["parameters.stopDate", "parameters.maxTriggers"],
        ),
        (
            {"annotations": [{"key": "feed", "value": "/whisk.system/messaging/kafkaFeed"}]},
            ["annotations.feed"],
        ),
        ({"scheduled_details": {"cron": "* * * * *", "every": 2}}, ["scheduled_details.every"]),
    ]
    for body, fields in cases:
        answer = await guest.client.put(f"{TRIGGERS}/bad", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["code"] == "unsupported_field"
        for field in fields:
            assert field in answer.json()["error"], (field, answer.text)
    assert (await guest.client.get(f"{TRIGGERS}/bad")).status_code == 404
