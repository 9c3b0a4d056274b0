"""invokeConfig, dead letters and Idempotency-Key through the API (fake invoker)."""

from __future__ import annotations

import asyncio

import pytest

from tests.api.conftest import ACTIONS, PACKAGES, FakeInvoker, Tenant, hello
from wisp.models import DeadLetter
from wisp.platform import Platform

LETTERS = "/api/v1/namespaces/_/deadletters"


@pytest.fixture
async def fn(guest: Tenant) -> str:
    assert (await guest.client.put(f"{PACKAGES}/pkg", json={})).status_code == 200
    assert (await guest.client.put(f"{ACTIONS}/pkg/fn", json=hello())).status_code == 200
    return f"{ACTIONS}/pkg/fn"


async def test_invoke_config_defaults_put_and_get(guest: Tenant, fn: str) -> None:
    r = await guest.client.get(f"{fn}/invokeConfig")
    assert r.status_code == 200, r.text
    assert r.json()["maximumRetryAttempts"] == 0
    assert r.json()["maximumEventAgeSeconds"] == 21600
    body = {
        "maximumRetryAttempts": 3,
        "maximumEventAgeSeconds": 600,
        "backoff": {"initial": "500ms", "factor": 3},
        "retryOn": ["developer"],
        "onFailure": {"trigger": "failures"},
    }
    r = await guest.client.put(f"{fn}/invokeConfig", json=body)
    assert r.status_code == 200, r.text
    doc = (await guest.client.get(f"{fn}/invokeConfig")).json()
    assert doc == r.json()
    assert doc["backoff"]["initial"] == 0.5 and doc["backoff"]["factor"] == 3
    assert doc["retryOn"] == ["internal", "developer"]
    assert doc["onFailure"] == {"trigger": "failures"}
    # The function itself is untouched by its config routes.
    assert (await guest.client.get(fn)).json()["name"] == "fn"


async def test_invoke_config_of_a_function_outside_packages(guest: Tenant) -> None:
    assert (await guest.client.put(f"{ACTIONS}/plain", json=hello())).status_code == 200
    r = await guest.client.put(f"{ACTIONS}/plain/invokeConfig", json={"maximumRetryAttempts": 1})
    assert r.status_code == 200, r.text
    r = await guest.client.get(f"{ACTIONS}/plain/invokeConfig")
    assert r.json()["maximumRetryAttempts"] == 1


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"maximumRetryAttempts": 9}, ["maximumRetryAttempts", "0 to 5"]),
        ({"maximumEventAgeSeconds": 10}, ["maximumEventAgeSeconds", "60 to 21600"]),
        ({"backoff": {"factor": 0.5}}, ["backoff.factor", "1 to 10"]),
        ({"retryOn": ["sometimes"]}, ["retryOn"]),
    ],
)
async def test_a_bad_invoke_config_is_a_400_naming_the_field(
    guest: Tenant, fn: str, body: dict[str, object], words: list[str]
) -> None:
    r = await guest.client.put(f"{fn}/invokeConfig", json=body)
    assert r.status_code == 400
    for word in words:
        assert word in r.json()["error"]


async def test_on_failure_may_not_name_the_function_itself(guest: Tenant, fn: str) -> None:
    body = {"onFailure": {"function": "pkg/fn"}}
    r = await guest.client.put(f"{fn}/invokeConfig", json=body)
    assert r.status_code == 400 and "onFailure.function" in r.json()["error"]


async def test_invoke_config_of_a_missing_function_is_a_404(guest: Tenant) -> None:
    r = await guest.client.put(f"{ACTIONS}/nope/invokeConfig", json={})
    assert r.status_code == 404
    assert (await guest.client.get(f"{ACTIONS}/pkg/nope/invokeConfig")).status_code == 404


async def test_a_deleted_function_loses_its_config(guest: Tenant, fn: str) -> None:
    await guest.client.put(f"{fn}/invokeConfig", json={"maximumRetryAttempts": 4})
    assert (await guest.client.delete(fn)).status_code == 200
    assert (await guest.client.put(fn, json=hello())).status_code == 200
    assert (await guest.client.get(f"{fn}/invokeConfig")).json()["maximumRetryAttempts"] == 0


def _letter(namespace: str, aid: str, created: int) -> DeadLetter:
    return DeadLetter(
        activation_id=aid,
        namespace=namespace,
        name="pkg/fn",
        version="0.0.1",
        reason="RetriesExhausted",
        created=created,
        attempts=3,
        request={"params": {"n": created}, "subject": namespace},
        response={"status": "action developer error", "statusCode": 2, "result": {}},
    )


async def test_dead_letters_list_get_redrive_purge(
    guest: Tenant, other: Tenant, fn: str, platform: Platform, invoker: FakeInvoker
) -> None:
    for n in range(3):
        platform.store.put_dead_letter(_letter(guest.name, f"{n:032x}", 1_000 + n))
    platform.store.put_dead_letter(_letter(other.name, "f" * 32, 5_000))
    listed = (await guest.client.get(LETTERS)).json()
    assert [d["activationId"] for d in listed] == [f"{n:032x}" for n in (2, 1, 0)]
    assert listed[0]["reason"] == "RetriesExhausted" and listed[0]["request"]["params"] == {
        "n": 1002
    }
    assert len((await guest.client.get(f"{LETTERS}?limit=1&skip=1")).json()) == 1
    one = await guest.client.get(f"{LETTERS}/{1:032x}")
    assert one.status_code == 200 and one.json()["attempts"] == 3
    assert (await other.client.get(f"{LETTERS}/{1:032x}")).status_code == 404

    r = await guest.client.post(f"{LETTERS}/{1:032x}/redrive")
    assert r.status_code == 202, r.text
    assert r.json()["redriven"] == f"{1:032x}"
    call = invoker.calls[-1]
    assert call.params == {"n": 1001} and call.target.action.path == "pkg/fn"
    assert call.activation_id == r.json()["activationId"]
    assert (await guest.client.get(f"{LETTERS}/{1:032x}")).status_code == 404
    assert (await guest.client.post(f"{LETTERS}/{1:032x}/redrive")).status_code == 404

    r = await guest.client.delete(LETTERS)
    assert r.status_code == 200 and r.json() == {"purged": 2}
    assert (await guest.client.get(LETTERS)).json() == []
    assert len((await other.client.get(LETTERS)).json()) == 1


async def test_idempotency_key_same_body_same_activation(
    guest: Tenant, fn: str, invoker: FakeInvoker
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await guest.client.post(fn, json={"a": 1, "b": 2}, headers=headers)
    assert first.status_code == 202, first.text
    aid = first.json()["activationId"]
    # Same document, keys in another order: the same body.
    again = await guest.client.post(fn, json={"b": 2, "a": 1}, headers=headers)
    assert again.status_code == 202 and again.json()["activationId"] == aid
    assert again.headers["x-openwhisk-activation-id"] == aid
    assert [c.activation_id for c in invoker.calls] == [aid]
    other_body = await guest.client.post(fn, json={"a": 2}, headers=headers)
    assert other_body.status_code == 422
    assert "Idempotency-Key" in other_body.json()["error"] and aid in other_body.json()["error"]
    # The same key and body for another function is another request too.
    assert (await guest.client.put(f"{ACTIONS}/pkg/fn2", json=hello())).status_code == 200
    elsewhere = await guest.client.post(f"{fn}2", json={"a": 1, "b": 2}, headers=headers)
    assert elsewhere.status_code == 422
    # Another key is another activation.
    fresh = await guest.client.post(fn, json={"a": 1}, headers={"Idempotency-Key": "order-43"})
    assert fresh.json()["activationId"] != aid and len(invoker.calls) == 2


async def test_idempotency_keys_belong_to_a_namespace(
    guest: Tenant, other: Tenant, fn: str
) -> None:
    assert (await other.client.put(f"{PACKAGES}/pkg", json={})).status_code == 200
    assert (await other.client.put(f"{ACTIONS}/pkg/fn", json=hello())).status_code == 200
    headers = {"Idempotency-Key": "shared"}
    a = await guest.client.post(fn, json={}, headers=headers)
    b = await other.client.post(fn, json={}, headers=headers)
    assert a.json()["activationId"] != b.json()["activationId"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "tab\there"])
async def test_a_bad_idempotency_key_is_a_400(guest: Tenant, fn: str, key: str) -> None:
    r = await guest.client.post(fn, json={}, headers={"Idempotency-Key": key.encode("latin-1")})
    assert r.status_code == 400
    assert "Idempotency-Key" in r.json()["error"]


async def test_idempotency_key_on_a_blocking_invoke_is_refused(guest: Tenant, fn: str) -> None:
    r = await guest.client.post(f"{fn}?blocking=true", json={}, headers={"Idempotency-Key": "k"})
    assert r.status_code == 400 and "non-blocking" in r.json()["error"]


async def test_concurrent_invokes_with_one_key_start_one_activation(
    guest: Tenant, fn: str, invoker: FakeInvoker
) -> None:
    headers = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(
        *(guest.client.post(fn, json={"x": 1}, headers=headers) for _ in range(50))
    )
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["activationId"] for r in answers}) == 1
    assert len(invoker.calls) == 1


async def test_a_refused_invoke_gives_its_idempotency_key_back(
    guest: Tenant, fn: str, invoker: FakeInvoker
) -> None:
    headers = {"Idempotency-Key": "after-503"}
    invoker.accepting = False  # stopping: submit refuses with 503
    refused = await guest.client.post(fn, json={"x": 1}, headers=headers)
    assert refused.status_code == 503
    invoker.accepting = True
    retried = await guest.client.post(fn, json={"x": 1}, headers=headers)
    assert retried.status_code == 202
    assert [c.activation_id for c in invoker.calls] == [retried.json()["activationId"]]


async def test_a_refused_redrive_keeps_the_dead_letter(
    guest: Tenant, fn: str, platform: Platform, invoker: FakeInvoker
) -> None:
    platform.store.put_dead_letter(_letter(guest.name, "e" * 32, 1))
    invoker.accepting = False
    assert (await guest.client.post(f"{LETTERS}/{'e' * 32}/redrive")).status_code == 503
    assert (await guest.client.get(f"{LETTERS}/{'e' * 32}")).status_code == 200
    invoker.accepting = True
    answers = await asyncio.gather(
        *(guest.client.post(f"{LETTERS}/{'e' * 32}/redrive") for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [202, 404, 404, 404, 404]
    assert len(invoker.calls) == 1
