"""Aliases and qualified names (``fn:0.0.2``, ``fn:live``) over HTTP, on every store."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import ACTIONS, PACKAGES, FakeInvoker, Tenant
from tests.api.test_releases import body, put, runs, versions
from tests.web.conftest import web_action
from wisp.entities import VERSIONS_KEPT


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


async def point(tenant: Tenant, path: str, alias: str, version: str) -> dict[str, Any]:
    r = await tenant.client.put(f"{ACTIONS}/{path}/aliases/{alias}", json={"version": version})
    assert r.status_code == 200, r.text
    made: dict[str, Any] = r.json()
    return made


async def invoke(tenant: Tenant, path: str) -> tuple[str, Any, dict[str, Any]]:
    """(version, parameter n, annotations) of one blocking invoke of ``path``."""
    r = await tenant.client.post(f"{ACTIONS}/{path}?blocking=true", json={})
    assert r.status_code == 200, r.text
    record = r.json()
    notes = {a["key"]: a["value"] for a in record["annotations"]}
    return record["version"], record["response"]["result"]["n"], notes


async def test_an_alias_names_a_version_until_repointed(guest: Tenant) -> None:
    await put(guest, "fn", body(1))
    await put(guest, "fn", body(2))
    made = await point(guest, "fn", "live", "0.0.1")
    assert made["name"] == "live" and made["function"] == "fn" and made["version"] == "0.0.1"
    assert made["subject"] == guest.name and made["updated"] > 0

    version, n, notes = await invoke(guest, "fn:live")
    assert (version, n) == ("0.0.1", 1)
    assert notes["executedVersion"] == "0.0.1" and notes["alias"] == "live"
    version, n, notes = await invoke(guest, "fn:0.0.2")
    assert (version, n, notes["executedVersion"]) == ("0.0.2", 2, "0.0.2")
    assert "alias" not in notes
    version, n, notes = await invoke(guest, "fn")  # bare: the current version
    assert (version, n) == ("0.0.2", 2) and "executedVersion" not in notes

    await point(guest, "fn", "live", "0.0.2")  # the cached target is dropped
    assert (await invoke(guest, "fn:live"))[:2] == ("0.0.2", 2)
    await point(guest, "fn", "beta", "0.0.1")
    listed = (await guest.client.get(f"{ACTIONS}/fn/aliases")).json()
    assert [(a["name"], a["version"]) for a in listed] == [("beta", "0.0.1"), ("live", "0.0.2")]
    got = await guest.client.get(f"{ACTIONS}/fn/aliases/beta")
    assert got.status_code == 200 and got.json()["version"] == "0.0.1"
    assert [v["aliases"] for v in await versions(guest, "fn")] == [["live"], ["beta"]]

    gone = await guest.client.delete(f"{ACTIONS}/fn/aliases/beta")
    assert gone.status_code == 200 and gone.json()["name"] == "beta"
    r = await guest.client.post(f"{ACTIONS}/fn:beta?blocking=true", json={})
    assert r.status_code == 404 and "alias 'beta'" in r.json()["error"]
    # A rollback moves the bare name, not the alias.
    await guest.client.post(f"{ACTIONS}/fn/rollback")
    assert (await invoke(guest, "fn"))[:2] == ("0.0.3", 1)
    assert (await invoke(guest, "fn:live"))[:2] == ("0.0.2", 2)


async def test_aliases_in_a_package(guest: Tenant) -> None:
    await guest.client.put(f"{PACKAGES}/pkg", json={})
    await put(guest, "pkg/fn", body(1))
    await put(guest, "pkg/fn", body(2))
    made = await point(guest, "pkg/fn", "live", "0.0.1")
    assert made["function"] == "pkg/fn"
    assert (await invoke(guest, "pkg/fn:live"))[:2] == ("0.0.1", 1)
    assert (await invoke(guest, "pkg/fn"))[:2] == ("0.0.2", 2)
    assert await runs(guest, "pkg/fn:0.0.1") == ("0.0.1", 1)


async def test_aliased_versions_outlive_retention(guest: Tenant) -> None:
    await put(guest, "fn", body(1))
    await point(guest, "fn", "live", "0.0.1")
    for n in range(2, VERSIONS_KEPT + 4):
        await put(guest, "fn", body(n))
    kept = [v["version"] for v in await versions(guest, "fn")]
    assert len(kept) == VERSIONS_KEPT + 1 and kept[-1] == "0.0.1" and "0.0.2" not in kept
    assert (await invoke(guest, "fn:live"))[:2] == ("0.0.1", 1)
    # Once nothing points at it, the next version prunes it.
    await guest.client.delete(f"{ACTIONS}/fn/aliases/live")
    await put(guest, "fn", body(99))
    kept = [v["version"] for v in await versions(guest, "fn")]
    assert len(kept) == VERSIONS_KEPT and "0.0.1" not in kept


async def test_alias_and_qualifier_errors_name_what_is_wrong(guest: Tenant) -> None:
    c = guest.client
    await put(guest, "fn", body(1))
    url = f"{ACTIONS}/fn/aliases"
    r = await c.put(f"{url}/live", json={"version": "0.0.7"})
    assert r.status_code == 404 and "version 0.0.7 of function 'fn'" in r.json()["error"]
    for alias in ("0.0.1", "1st", "versions", "latest", "a" * 65, "a.b"):
        r = await c.put(f"{url}/{alias}", json={"version": "0.0.1"})
        assert r.status_code == 400 and "invalid alias name" in r.json()["error"], alias
    for bad, words in [
        ({}, "version must be"),
        ({"version": "one"}, "version must be"),
        ({"version": "0.0.1", "canary": {"version": "0.0.1", "weight": 0.1}}, "canary"),
    ]:
        r = await c.put(f"{url}/live", json=bad)
        assert r.status_code == 400 and words in r.json()["error"], (bad, r.text)
    r = await c.put(f"{ACTIONS}/nothing/aliases/live", json={"version": "0.0.1"})
    assert r.status_code == 404 and "nothing" in r.json()["error"]
    r = await c.get(f"{url}/live")
    assert r.status_code == 404 and "alias 'live' of function 'fn'" in r.json()["error"]
    r = await c.delete(f"{url}/live")
    assert r.status_code == 404
    assert (await c.get(url)).json() == []

    for qualified, status, words in [
        ("fn:nope", 404, "alias 'nope'"),
        ("fn:0.0.9", 404, "version 0.0.9 of function 'fn'"),
        ("fn:", 400, "ends with ':'"),
        ("fn:a.b", 400, "neither a version"),
        ("nothing:live", 404, "nothing"),
    ]:
        r = await c.post(f"{ACTIONS}/{qualified}?blocking=true", json={})
        assert r.status_code == status and words in r.json()["error"], (qualified, r.text)


async def test_rules_and_web_functions_take_qualified_names(
    guest: Tenant, anonymous: httpx.AsyncClient, invoker: FakeInvoker
) -> None:
    c = guest.client
    for n in (1, 2):
        await put(guest, "fn", web_action(parameters={"n": n}))
    await point(guest, "fn", "live", "0.0.1")

    web = f"/api/v1/web/{guest.name}/default"
    assert (await anonymous.get(f"{web}/fn:live.json")).json()["n"] == 1
    assert (await anonymous.get(f"{web}/fn:0.0.2.json")).json()["n"] == 2
    assert (await anonymous.get(f"{web}/fn.json")).json()["n"] == 2
    assert (await anonymous.get(f"{web}/fn:nope.json")).status_code == 404

    await c.put("/api/v1/namespaces/_/triggers/t", json={})
    r = await c.put("/api/v1/namespaces/_/rules/r", json={"trigger": "t", "action": "fn:live"})
    assert r.status_code == 200, r.text
    for bad, status in (("fn:nope", 404), ("fn:0.0.9", 404), ("fn:", 400), ("fn:a.b", 400)):
        r = await c.put("/api/v1/namespaces/_/rules/bad", json={"trigger": "t", "action": bad})
        assert r.status_code == status, (bad, r.text)
    calls = len(invoker.calls)
    assert (await c.post("/api/v1/namespaces/_/triggers/t", json={})).status_code == 202
    fired = invoker.calls[calls:]
    assert [(call.target.action.version, call.target.alias) for call in fired] == [
        ("0.0.1", "live")
    ]


async def test_get_of_a_qualified_name_is_that_version(guest: Tenant) -> None:
    await put(guest, "fn", body(1))
    await put(guest, "fn", body(2))
    await point(guest, "fn", "live", "0.0.1")
    for qualified, version in (("fn:0.0.1", "0.0.1"), ("fn:live", "0.0.1"), ("fn", "0.0.2")):
        got = await guest.client.get(f"{ACTIONS}/{qualified}")
        assert got.status_code == 200, got.text
        doc = got.json()
        assert doc["version"] == version and f"'v': {version[-1]}" in doc["exec"]["code"]
    r = await guest.client.get(f"{ACTIONS}/fn:0.0.7")
    assert r.status_code == 404 and "version 0.0.7" in r.json()["error"]
