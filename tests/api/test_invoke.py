"""POST .../actions/[pkg/]name: blocking, non-blocking, result=true, errors, headers."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.conftest import (
    ACTIONS,
    ACTIVATIONS,
    PACKAGES,
    PAYLOAD_MAX,
    SLOW_DELAY,
    FakeInvoker,
    Tenant,
    hello,
)

HEADER = "x-openwhisk-activation-id"


@pytest.fixture
async def fn(guest: Tenant) -> str:
    r = await guest.client.put(
        f"{ACTIONS}/fn", json=hello(parameters=[{"key": "greeting", "value": "hi"}])
    )
    assert r.status_code == 200
    return f"{ACTIONS}/fn"


async def test_blocking_success_returns_record(guest: Tenant, fn: str) -> None:
    r = await guest.client.post(f"{fn}?blocking=true", json={"name": "Ada"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert r.headers[HEADER] == doc["activationId"] and len(doc["activationId"]) == 32
    assert doc["response"]["result"] == {"greeting": "hi", "name": "Ada"}
    assert doc["response"]["success"] is True and doc["statusCode"] == 0
    assert doc["namespace"] == guest.name and doc["name"] == "fn"


async def test_blocking_result_true_returns_only_the_result(guest: Tenant, fn: str) -> None:
    r = await guest.client.post(f"{fn}?blocking=true&result=true", json={"name": "Ada"})
    assert r.status_code == 200
    assert r.json() == {"greeting": "hi", "name": "Ada"}
    assert len(r.headers[HEADER]) == 32


async def test_non_blocking_is_202_with_id(guest: Tenant, fn: str) -> None:
    for url in (fn, f"{fn}?blocking=false"):
        r = await guest.client.post(url, json={})
        assert r.status_code == 202
        assert r.json() == {"activationId": r.headers[HEADER]}
        got = await guest.client.get(f"{ACTIVATIONS}/{r.headers[HEADER]}")
        assert got.status_code == 200


async def test_empty_body_is_empty_params(guest: Tenant, fn: str, invoker: FakeInvoker) -> None:
    r = await guest.client.post(f"{fn}?blocking=true&result=true", content=b"")
    assert r.status_code == 200 and r.json() == {"greeting": "hi"}
    assert invoker.calls[-1].params == {} and invoker.calls[-1].subject == guest.name


async def test_application_error_is_502_with_record(guest: Tenant, fn: str) -> None:
    r = await guest.client.post(f"{fn}?blocking=true", json={"fail": 1})
    assert r.status_code == 502
    doc = r.json()
    assert doc["statusCode"] == 1 and doc["response"]["status"] == "application error"
    assert doc["response"]["result"] == {"error": "it failed"}
    assert r.headers[HEADER] == doc["activationId"]
    only = await guest.client.post(f"{fn}?blocking=true&result=true", json={"fail": 1})
    assert (only.status_code, only.json()) == (502, {"error": "it failed"})


async def test_developer_error_is_502_and_internal_is_500(guest: Tenant, fn: str) -> None:
    crash = await guest.client.post(f"{fn}?blocking=true", json={"crash": 1})
    assert crash.status_code == 502 and crash.json()["statusCode"] == 2
    internal = await guest.client.post(f"{fn}?blocking=true", json={"internal": 1})
    assert internal.status_code == 500 and internal.json()["statusCode"] == 3
    assert HEADER in internal.headers


async def test_blocking_past_sync_limit_is_202_and_keeps_running(guest: Tenant, fn: str) -> None:
    r = await guest.client.post(f"{fn}?blocking=true", json={"slow": 1})
    assert r.status_code == 202
    aid = r.headers[HEADER]
    assert r.json() == {"activationId": aid}
    pending = await guest.client.get(f"{ACTIVATIONS}/{aid}")
    assert pending.status_code == 404
    await asyncio.sleep(SLOW_DELAY + 0.2)
    done = await guest.client.get(f"{ACTIVATIONS}/{aid}")
    assert done.status_code == 200 and done.json()["response"]["result"]["slow"] == 1


async def test_timeout_query_shortens_the_wait(
    guest: Tenant, fn: str, invoker: FakeInvoker
) -> None:
    invoker.delay = 0.05  # shorter than the sync limit, longer than timeout=10
    r = await guest.client.post(f"{fn}?blocking=true&timeout=10", json={"slow": 1})
    assert r.status_code == 202
    r = await guest.client.post(f"{fn}?blocking=true&timeout=5000", json={"slow": 1})
    assert r.status_code == 200


async def test_packaged_action_merges_package_parameters_and_env(
    guest: Tenant, invoker: FakeInvoker
) -> None:
    c = guest.client
    package = {
        "parameters": [
            {"key": "a", "value": "pkg"},
            {"key": "b", "value": "pkg"},
            {"key": "PKG_ENV", "value": {"n": 1}, "init": True},
        ]
    }
    assert (await c.put(f"{PACKAGES}/lib", json=package)).status_code == 200
    action = hello(
        parameters=[{"key": "b", "value": "action"}, {"key": "TOKEN", "value": "s", "init": True}]
    )
    assert (await c.put(f"{ACTIONS}/lib/fn", json=action)).status_code == 200
    r = await c.post(f"{ACTIONS}/lib/fn?blocking=true", json={"c": "body"})
    assert r.status_code == 200
    assert r.json()["response"]["result"] == {"a": "pkg", "b": "action", "c": "body"}
    assert r.json()["name"] == "lib/fn"
    target = invoker.calls[-1].target
    assert target.env == {"PKG_ENV": '{"n": 1}', "TOKEN": "s"}
    assert target.parameters == {"a": "pkg", "b": "action"}


async def test_updates_are_seen_by_the_next_invoke(guest: Tenant, fn: str) -> None:
    c = guest.client
    assert (await c.post(f"{fn}?blocking=true&result=true")).json() == {"greeting": "hi"}
    r = await c.put(
        f"{fn}?overwrite=true", json={"parameters": [{"key": "greeting", "value": "hello"}]}
    )
    assert r.status_code == 200
    assert (await c.post(f"{fn}?blocking=true&result=true")).json() == {"greeting": "hello"}
    assert (await c.delete(fn)).status_code == 200
    gone = await c.post(f"{fn}?blocking=true")
    assert gone.status_code == 404 and HEADER not in gone.headers


async def test_invoke_missing_action_is_404(guest: Tenant) -> None:
    for path in (f"{ACTIONS}/nope", f"{ACTIONS}/pkg/nope"):
        r = await guest.client.post(f"{path}?blocking=true", json={})
        assert r.status_code == 404 and r.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object, not an array"),
        (b'"text"', "must be a JSON object, not a string"),
        (b"null", "must be a JSON object, not null"),
        (b"42", "must be a JSON object, not a number"),
        (b'{"x": NaN}', "not valid JSON"),
        (b"\xff\xfe", "not"),
    ],
)
async def test_bad_bodies_are_400(guest: Tenant, fn: str, body: bytes, message: str) -> None:
    r = await guest.client.post(
        f"{fn}?blocking=true", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


async def test_oversize_payload_is_413(guest: Tenant, fn: str, invoker: FakeInvoker) -> None:
    body = b'{"x": "' + b"a" * PAYLOAD_MAX + b'"}'
    r = await guest.client.post(f"{fn}?blocking=true", content=body)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert str(len(body)) in r.json()["error"] and str(PAYLOAD_MAX) in r.json()["error"]

    async def chunks() -> object:
        # No content-length: the limit is enforced while streaming.
        for _ in range(3):
            yield b" " * (PAYLOAD_MAX // 2)

    streamed = await guest.client.post(f"{fn}?blocking=true", content=chunks())  # type: ignore[arg-type]
    assert streamed.status_code == 413 and str(PAYLOAD_MAX) in streamed.json()["error"]
    assert invoker.calls == []


@pytest.mark.parametrize(
    ("query", "name"),
    [("blocking=maybe", "blocking"), ("result=2x", "result"), ("timeout=-1", "timeout")],
)
async def test_bad_invoke_queries_are_400(guest: Tenant, fn: str, query: str, name: str) -> None:
    r = await guest.client.post(f"{fn}?{query}", json={})
    assert r.status_code == 400 and f"'{name}'" in r.json()["error"]


async def test_hot_path_does_no_store_reads(guest: Tenant, fn: str, store: object) -> None:
    assert (await guest.client.post(f"{fn}?blocking=true")).status_code == 200

    def boom(*args: object) -> None:
        raise AssertionError("store read on the hot path")

    for method in ("get_action", "get_package", "namespace_by_uuid"):
        setattr(store, method, boom)
    r = await guest.client.post(f"{fn}?blocking=true&result=true", json={"n": 1})
    assert r.status_code == 200 and r.json()["n"] == 1


async def test_query_flags_are_read_per_request_when_remembered(guest: Tenant, fn: str) -> None:
    # The parsed flags are cached by query string: each shape must still mean itself.
    for _ in range(2):
        assert (await guest.client.post(f"{fn}?blocking=true", json={})).status_code == 200
        assert (await guest.client.post(f"{fn}?blocking=false", json={})).status_code == 202
        r = await guest.client.post(f"{fn}?blocking=true&result=true", json={"a": 1})
        assert r.status_code == 200 and r.json() == {"a": 1, "greeting": "hi"}
        assert (await guest.client.post(f"{fn}?blocking=maybe", json={})).status_code == 400


async def test_a_draining_platform_answers_503_with_retry_after(
    guest: Tenant, fn: str, invoker: FakeInvoker
) -> None:
    invoker.drain()  # what SIGTERM does first
    for url in (fn, f"{fn}?blocking=true"):
        r = await guest.client.post(url, json={})
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        assert r.json() == {
            "error": "The platform is stopping; try again shortly.",
            "code": "unavailable",
        }
    assert invoker.calls == []
