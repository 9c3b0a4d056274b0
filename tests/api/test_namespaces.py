"""Namespaces and auth: wisp.namespaces, /api/v1, /healthz, /namespaces, limits, 401/403."""

from __future__ import annotations

import base64

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import ACTIONS, KIND, Tenant, hello
from wisp.errors import BadRequest, Conflict
from wisp.ids import hash_key
from wisp.namespaces import authenticate, create_namespace
from wisp.store.base import Store
from wisp.store.memory import MemoryStore


def test_create_namespace_stores_only_the_key_hash() -> None:
    store = MemoryStore()
    namespace, auth = create_namespace(store, "alice@example.com")
    uuid, key = auth.split(":")
    stored = store.get_namespace("alice@example.com")
    assert stored is not None and stored.uuid == uuid == namespace.uuid
    assert stored.key_hash == hash_key(key) and key not in stored.key_hash
    assert authenticate(store, auth) == stored


@pytest.mark.parametrize("name", ["", "_", "a b", "a/b", "x" * 257, "ümlaut"])
def test_create_namespace_rejects_bad_names(name: str) -> None:
    with pytest.raises(BadRequest, match="invalid namespace name"):
        create_namespace(MemoryStore(), name)


def test_create_namespace_twice_conflicts() -> None:
    store = MemoryStore()
    create_namespace(store, "dup")
    with pytest.raises(Conflict):
        create_namespace(store, "dup")


@pytest.mark.parametrize(
    "auth", ["", "nocolon", ":key", "uuid:", "00000000-0000-0000-0000-000000000000:key"]
)
def test_authenticate_rejects_malformed_and_unknown(auth: str) -> None:
    store = MemoryStore()
    create_namespace(store, "guest")
    assert authenticate(store, auth) is None


def test_authenticate_rejects_wrong_key() -> None:
    store = MemoryStore()
    _, auth = create_namespace(store, "guest")
    assert authenticate(store, auth[:-1] + ("x" if auth[-1] != "x" else "y")) is None


async def test_api_info_needs_no_auth(anonymous: httpx.AsyncClient) -> None:
    r = await anonymous.get("/api/v1")
    assert r.status_code == 200
    doc = r.json()
    assert doc["api_paths"] == ["/api/v1"]
    entries = {e["kind"]: e for e in doc["runtimes"]["python"]}
    assert entries[KIND]["default"] is True and entries[KIND]["deprecated"] is False
    limits = doc["limits"]
    assert limits["max_action_memory"] == 1024 * 1024 * 1024
    assert limits["default_action_duration"] == 3000
    assert limits["max_action_payload"] == 16 * 1024
    assert {"actions_per_minute", "concurrent_actions", "max_action_code"} <= set(limits)


async def test_healthz(anonymous: httpx.AsyncClient) -> None:
    r = await anonymous.get("/healthz")
    # The fake invoker confines nothing, and says so.
    expected = {
        "status": "ok",
        "isolation": {"level": "none", "layers": "none"},
        "writer": {"pending": 0, "backlog": 50_000, "saturated": False},
    }
    assert (r.status_code, r.json()) == (200, expected)


async def test_namespaces_lists_the_caller(guest: Tenant, other: Tenant) -> None:
    r = await guest.client.get("/api/v1/namespaces")
    assert (r.status_code, r.json()) == (200, [guest.name])


async def test_namespace_limits(guest: Tenant) -> None:
    for ns in ("_", guest.name):
        r = await guest.client.get(f"/api/v1/namespaces/{ns}/limits")
        assert r.status_code == 200
        assert r.json()["maxActionMemory"] == 1024 * 1024 * 1024
        assert r.json()["concurrentInvocations"] == 120
        assert "concurrentActions" not in r.json()


async def test_limits_report_what_is_enforced_as_soon_as_it_changes(
    app: Starlette, guest: Tenant, store: Store
) -> None:
    limits = f"/api/v1/namespaces/{guest.name}/limits"
    assert (await guest.client.get(limits)).json()["concurrentInvocations"] == 120  # auth cached
    store.set_namespace_limits(guest.name, {"concurrentActions": 1, "invocationsPerMinute": 3})
    doc = (await guest.client.get(limits)).json()
    assert (doc["concurrentInvocations"], doc["invocationsPerMinute"]) == (1, 3)
    # Trigger fires: the figure the limiter refuses at, in both reports.
    enforced = app.state.triggers.limiter.per_minute
    assert doc["firesPerMinute"] == enforced
    info = (await guest.client.get("/api/v1")).json()["limits"]
    assert info["triggers_per_minute"] == enforced
    await guest.client.put("/api/v1/namespaces/_/triggers/t", json={})
    for _ in range(enforced):
        assert (await guest.client.post("/api/v1/namespaces/_/triggers/t")).status_code == 204
    refused = await guest.client.post("/api/v1/namespaces/_/triggers/t")
    assert refused.status_code == 429 and f"allowed: {enforced})" in refused.json()["error"]


def _assert_401(r: httpx.Response) -> None:
    assert r.status_code == 401
    assert r.json() == {"error": "The supplied authentication is invalid", "code": "unauthorized"}
    assert r.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "path", ["/api/v1/namespaces", "/api/v1/namespaces/_/limits", ACTIONS, ACTIONS + "/x"]
)
async def test_no_auth_is_401(anonymous: httpx.AsyncClient, path: str) -> None:
    _assert_401(await anonymous.get(path))


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Basic",
        "Basic !!notbase64!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
    ],
)
async def test_malformed_auth_is_401(anonymous: httpx.AsyncClient, header: str) -> None:
    _assert_401(await anonymous.get("/api/v1/namespaces", headers={"Authorization": header}))


async def test_wrong_key_is_401(anonymous: httpx.AsyncClient, guest: Tenant) -> None:
    uuid, key = guest.basic
    _assert_401(await anonymous.get("/api/v1/namespaces", auth=(uuid, key + "x")))
    # After a successful call is cached, a wrong key must still fail.
    assert (await anonymous.get("/api/v1/namespaces", auth=(uuid, key))).status_code == 200
    _assert_401(await anonymous.get("/api/v1/namespaces", auth=(uuid, key[:-1])))


async def test_auth_is_cached_after_first_call(
    guest: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await guest.client.get("/api/v1/namespaces")).status_code == 200

    def no_store(*args: object) -> None:
        raise AssertionError("the store was asked again")

    monkeypatch.setattr("wisp.api.auth.authenticate", no_store)
    assert (await guest.client.get("/api/v1/namespaces")).status_code == 200


async def test_other_namespace_is_forbidden_and_invisible(guest: Tenant, other: Tenant) -> None:
    r = await guest.client.put(f"{ACTIONS}/secret", json=hello())
    assert r.status_code == 200
    own = f"/api/v1/namespaces/{guest.name}"
    assert (await guest.client.get(f"{own}/actions/secret")).status_code == 200
    theirs = f"/api/v1/namespaces/{guest.name}"
    for method, path in [
        ("GET", f"{theirs}/actions/secret"),
        ("GET", f"{theirs}/actions"),
        ("PUT", f"{theirs}/actions/mine"),
        ("DELETE", f"{theirs}/actions/secret"),
        ("POST", f"{theirs}/actions/secret"),
        ("GET", f"{theirs}/packages"),
        ("GET", f"{theirs}/activations"),
        ("GET", f"{theirs}/limits"),
    ]:
        r = await other.client.request(method, path, json=hello())
        assert r.status_code == 403, (method, path)
        assert r.json()["code"] == "forbidden"
    # Through "_" the other tenant sees only its own (empty) namespace.
    assert (await other.client.get(f"{ACTIONS}/secret")).status_code == 404
    assert (await other.client.get(ACTIONS)).json() == []
