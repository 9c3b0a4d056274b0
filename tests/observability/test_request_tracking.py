"""Request ids and trace context through the API (the invoke fast path, other routes,
web functions, gateway routes) to real sandboxes, and the JSON access lines (text ones,
the off switch and the stop flush against a real server: test_access_log.py)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from wisp.api import create_app
from wisp.namespaces import create_namespace

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"
CODE = (
    "import os\n"
    "def main(event, context):\n"
    "    return {'ctx': context.trace_parent, 'env': os.environ.get('TRACEPARENT'),\n"
    "            'request_id': context.request_id, 'state': os.environ.get('TRACESTATE')}\n"
)
WEB = {"key": "web-export", "value": True}
NEW_ID = re.compile(r"[0-9a-f]{20}")


def annotations(record: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: a["value"] for a in record["annotations"]}


@pytest.fixture
async def client(platform) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    namespace, auth = create_namespace(platform.store, "tracked")
    uuid_, _, key = auth.partition(":")
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wisp.test", auth=(uuid_, key)
    ) as http:
        body = {"exec": {"kind": "python:3.11", "code": CODE}, "annotations": [WEB]}
        r = await http.put("/api/v1/namespaces/_/actions/tr", json=body)
        assert r.status_code == 200, r.text
        yield http, namespace.name


def access_lines(capfd: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The access lines written to fd 2 so far (they go out after the loop turns)."""
    err = capfd.readouterr().err
    return [json.loads(line) for line in err.splitlines() if '"logger":"wisp.access"' in line]


async def activation(http: httpx.AsyncClient, aid: str) -> dict[str, Any]:
    r = await http.get(f"/api/v1/namespaces/_/activations/{aid}")
    assert r.status_code == 200, r.text
    record: dict[str, Any] = r.json()
    return record


async def test_invoke_carries_request_id_and_traceparent_to_the_function(client) -> None:
    http, _ = client
    r = await http.post(
        "/api/v1/namespaces/_/actions/tr?blocking=true",
        json={},
        headers={"X-Request-Id": "client-req-7", "traceparent": TRACEPARENT, "tracestate": "a=1"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "client-req-7"
    record = r.json()
    found = annotations(record)
    assert found["requestId"] == "client-req-7"
    assert found["traceId"] == TRACE_ID and found["parentSpanId"] == PARENT
    passed_on = f"00-{TRACE_ID}-{found['spanId']}-01"
    assert record["response"]["result"] == {
        "ctx": passed_on,
        "env": passed_on,
        "request_id": "client-req-7",  # OpenWhisk's transaction id is the request's id
        "state": "a=1",
    }
    assert annotations(await activation(http, record["activationId"]))["traceId"] == TRACE_ID


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{TRACE_ID}-{PARENT}-01-extra",  # version 00 has exactly four fields
        f"ff-{TRACE_ID}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00-{TRACE_ID.upper()}-{PARENT}-01",
    ],
)
async def test_a_malformed_traceparent_starts_a_new_trace(client, traceparent: str) -> None:
    http, _ = client
    r = await http.post(
        "/api/v1/namespaces/_/actions/tr?blocking=true&result=true",
        json={},
        headers={"traceparent": traceparent, "X-Request-Id": "bad id with spaces"},
    )
    assert r.status_code == 200, r.text
    request_id = r.headers["x-request-id"]
    assert NEW_ID.fullmatch(request_id)
    assert r.json()["request_id"] == request_id
    assert r.json()["env"].startswith("00-") and TRACE_ID not in r.json()["env"]


async def test_every_route_answers_with_a_request_id(client) -> None:
    http, _ = client
    listed = await http.get("/api/v1/namespaces/_/actions", headers={"X-Request-Id": "l-1"})
    assert listed.status_code == 200 and listed.headers["x-request-id"] == "l-1"
    missing = await http.get("/api/v1/namespaces/_/actions/nope")
    assert missing.status_code == 404 and NEW_ID.fullmatch(missing.headers["x-request-id"])
    unauthorised = await http.post("/api/v1/namespaces/_/actions/tr", auth=("x", "y"))
    assert unauthorised.status_code == 401 and unauthorised.headers["x-request-id"]
    assert (await http.get("/healthz")).headers["x-request-id"] != missing.headers["x-request-id"]


async def test_web_functions_and_gateway_routes_take_traceparent(client) -> None:
    http, namespace = client
    r = await http.get(
        f"/api/v1/web/{namespace}/default/tr.json",
        headers={"traceparent": TRACEPARENT, "X-Request-Id": "web-1"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "web-1"
    assert r.json()["env"].startswith(f"00-{TRACE_ID}-")
    found = annotations(await activation(http, r.headers["x-openwhisk-activation-id"]))
    assert (found["traceId"], found["parentSpanId"], found["requestId"]) == (
        TRACE_ID,
        PARENT,
        "web-1",
    )

    route = {"basePath": "/t", "path": "/x", "method": "GET", "function": "tr"}
    put = await http.put("/api/v1/namespaces/_/routes", json={**route, "responseType": "json"})
    assert put.status_code == 200, put.text
    r = await http.get(f"/gw/{namespace}/t/x", headers={"traceparent": TRACEPARENT})
    assert r.status_code == 200, r.text
    assert r.json()["env"].startswith(f"00-{TRACE_ID}-")
    found = annotations(await activation(http, r.headers["x-openwhisk-activation-id"]))
    assert found["traceId"] == TRACE_ID and found["parentSpanId"] == PARENT


async def test_a_web_functions_own_request_id_header_gives_way(client) -> None:
    http, namespace = client
    code = "def main(args):\n    return {'headers': {'X-Request-Id': 'mine'}, 'body': 'ok'}\n"
    body = {"exec": {"kind": "python:3.11", "code": code}, "annotations": [WEB]}
    assert (await http.put("/api/v1/namespaces/_/actions/own", json=body)).status_code == 200
    r = await http.get(f"/api/v1/web/{namespace}/default/own", headers={"X-Request-Id": "w-2"})
    assert r.status_code == 200, r.text
    assert r.headers.get_list("x-request-id") == ["w-2"]


async def test_with_the_access_log_off_there_are_no_access_lines(platform, capfd) -> None:
    platform.settings = platform.settings.with_(log_format="json", access_log="off")
    _, auth = create_namespace(platform.store, "quiet")
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wisp.test", auth=tuple(auth.split(":"))
    ) as http:
        body = {"exec": {"kind": "python:3.11", "code": CODE}}
        assert (await http.put("/api/v1/namespaces/_/actions/tr", json=body)).status_code == 200
        await http.post("/api/v1/namespaces/_/actions/tr?blocking=true", json={})
        await http.get("/api/v1/namespaces/_/actions")
    await asyncio.sleep(0.01)
    assert access_lines(capfd) == []


async def test_json_logs_write_an_access_line_per_request(platform, capfd) -> None:
    platform.settings = platform.settings.with_(log_format="json")
    _, auth = create_namespace(platform.store, "logged")
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wisp.test", auth=tuple(auth.split(":"))
    ) as http:
        body = {"exec": {"kind": "python:3.11", "code": CODE}}
        put = await http.put("/api/v1/namespaces/_/actions/tr", json=body)
        invoked = await http.post(
            "/api/v1/namespaces/_/actions/tr?blocking=true",
            json={},
            headers={"X-Request-Id": "i-1"},
        )
    assert put.status_code == invoked.status_code == 200
    await asyncio.sleep(0.01)
    lines = access_lines(capfd)
    for line in lines:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line.pop("ts"))
        assert line["level"] == "info" and line["message"].startswith(line["method"] + " ")
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("PUT", "/api/v1/namespaces/_/actions/tr", 200),
        ("POST", "/api/v1/namespaces/_/actions/tr", 200),
    ]
    assert lines[0]["request_id"] == put.headers["x-request-id"]
    assert lines[1]["request_id"] == "i-1"
    assert lines[1]["logger"] == "wisp.access" and lines[1]["duration_ms"] > 0


async def test_trigger_fires_run_their_rules_under_the_callers_trace(client) -> None:
    http, _ = client
    assert (await http.put("/api/v1/namespaces/_/triggers/t", json={})).status_code == 200
    rule = {"trigger": "t", "action": "tr"}
    assert (await http.put("/api/v1/namespaces/_/rules/r", json=rule)).status_code == 200
    fired = await http.post(
        "/api/v1/namespaces/_/triggers/t",
        json={},
        headers={"traceparent": TRACEPARENT, "X-Request-Id": "fire-1"},
    )
    assert fired.status_code == 202, fired.text
    for _ in range(100):
        listed = (await http.get("/api/v1/namespaces/_/activations?name=tr&docs=true")).json()
        if listed:
            break
        await asyncio.sleep(0.05)
    (record,) = listed
    found = annotations(record)
    assert (found["traceId"], found["parentSpanId"], found["requestId"]) == (
        TRACE_ID,
        PARENT,
        "fire-1",
    )
