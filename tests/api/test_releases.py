"""A function's versions and rollback over HTTP, on every store (the in-memory invoker:
what runs is checked by the parameters it merges; tests/api/test_rollback_live.py runs
real code)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import ACTIONS, PACKAGES, Tenant, hello
from wisp.entities import VERSIONS_KEPT


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def body(n: int, **extra: Any) -> dict[str, Any]:
    """Version ``n`` of a function: its code and its parameter ``n`` differ."""
    code = f"def main(args):\n    return {{'v': {n}}}\n"
    return hello(code, parameters=[{"key": "n", "value": n}], **extra)


async def put(tenant: Tenant, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    r = await tenant.client.put(f"{ACTIONS}/{path}?overwrite=true", json=doc)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def versions(tenant: Tenant, path: str) -> list[dict[str, Any]]:
    r = await tenant.client.get(f"{ACTIONS}/{path}/versions")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


async def runs(tenant: Tenant, path: str) -> tuple[str, Any]:
    """(version, parameter n) of what an invoke runs now."""
    r = await tenant.client.post(f"{ACTIONS}/{path}?blocking=true", json={})
    assert r.status_code == 200, r.text
    record = r.json()
    return record["version"], record["response"]["result"]["n"]


async def test_versions_list_what_each_ran_and_who_made_it(guest: Tenant) -> None:
    secret = [{"key": "API_TOKEN", "value": "s3cr3t"}, {"key": "ENV", "value": "e", "init": True}]
    first = await put(guest, "fn", hello("def main(args):\n    return {}\n", parameters=secret))
    second = await put(guest, "fn", body(2, limits={"timeout": 5000}))
    assert (first["version"], second["version"]) == ("0.0.1", "0.0.2")
    # Re-applying the same function makes no version.
    assert (await put(guest, "fn", body(2, limits={"timeout": 5000})))["version"] == "0.0.2"

    listed = await versions(guest, "fn")
    assert [v["version"] for v in listed] == ["0.0.2", "0.0.1"]
    assert [v["current"] for v in listed] == [True, False]
    newest, oldest = listed
    assert newest["subject"] == guest.name and oldest["subject"] == guest.name
    assert newest["created"] >= oldest["created"] > 0
    assert newest["limits"]["timeout"] == 5000 and oldest["limits"]["timeout"] == 3000
    assert newest["parameters"] == [{"key": "n", "value": 2}]
    # Secret values never leave the server here: the key shows, its value does not.
    assert oldest["parameters"] == [
        {"key": "API_TOKEN", "value": "********"},
        {"key": "ENV", "value": "********", "init": True},
    ]
    assert "s3cr3t" not in str(listed)
    assert newest["exec"]["digest"] != oldest["exec"]["digest"]
    assert len(newest["exec"]["digest"]) == 64 and "code" not in newest["exec"]
    assert {"key": "exec", "value": newest["exec"]["kind"]} in newest["annotations"]


async def test_rollback_runs_the_previous_version_at_once(guest: Tenant) -> None:
    await put(guest, "fn", body(1, annotations=[{"key": "team", "value": "a"}]))
    await put(guest, "fn", body(2))
    assert await runs(guest, "fn") == ("0.0.2", 2)  # the target is cached now

    r = await guest.client.post(f"{ACTIONS}/fn/rollback")
    assert r.status_code == 200, r.text
    made = r.json()
    assert made["version"] == "0.0.3" and made["changed"] is True and made["current"] is True
    assert made["subject"] == guest.name
    notes = {a["key"]: a["value"] for a in made["annotations"]}
    assert notes["rollback"] == {"from": "0.0.2", "to": "0.0.1"}
    assert notes["team"] == "a"  # 0.0.1's settings, annotations too
    assert await runs(guest, "fn") == ("0.0.3", 1)

    listed = await versions(guest, "fn")
    assert [v["version"] for v in listed] == ["0.0.3", "0.0.2", "0.0.1"]
    assert listed[0]["exec"]["digest"] == listed[2]["exec"]["digest"]
    got = (await guest.client.get(f"{ACTIONS}/fn")).json()
    assert got["version"] == "0.0.3" and "'v': 1" in got["exec"]["code"]

    # To a named version, through the package-less form of a path with a package.
    r = await guest.client.post(f"{ACTIONS}/default/fn/rollback", json={"version": "0.0.2"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == "0.0.4"
    assert await runs(guest, "fn") == ("0.0.4", 2)
    # The default is the version before the current one: back to 0.0.1's code.
    r = await guest.client.post(f"{ACTIONS}/fn/rollback", json={})
    assert r.json()["version"] == "0.0.5" and await runs(guest, "fn") == ("0.0.5", 1)


async def test_rollback_in_a_package(guest: Tenant) -> None:
    await guest.client.put(f"{PACKAGES}/pkg", json={})
    await put(guest, "pkg/fn", body(1))
    await put(guest, "pkg/fn", body(2))
    r = await guest.client.post(f"{ACTIONS}/pkg/fn/rollback", json={"version": "0.0.1"})
    assert r.status_code == 200, r.text
    assert await runs(guest, "pkg/fn") == ("0.0.3", 1)
    assert [v["version"] for v in await versions(guest, "pkg/fn")] == ["0.0.3", "0.0.2", "0.0.1"]


async def test_rolling_back_to_what_runs_changes_nothing(guest: Tenant) -> None:
    await put(guest, "fn", body(1))
    await put(guest, "fn", body(2))
    r = await guest.client.post(f"{ACTIONS}/fn/rollback", json={"version": "0.0.2"})
    assert r.status_code == 200 and r.json()["changed"] is False
    assert r.json()["version"] == "0.0.2"
    await guest.client.post(f"{ACTIONS}/fn/rollback")  # 0.0.3 runs 0.0.1's code
    r = await guest.client.post(f"{ACTIONS}/fn/rollback", json={"version": "0.0.1"})
    assert r.json()["changed"] is False and r.json()["version"] == "0.0.3"
    # Deploying what runs again (the rollback annotation is the server's) makes no version.
    assert (await put(guest, "fn", body(1)))["version"] == "0.0.3"
    assert len(await versions(guest, "fn")) == 3


async def test_an_update_after_a_rollback_is_no_rollback(guest: Tenant) -> None:
    await put(guest, "fn", body(1))
    await put(guest, "fn", body(2))
    await guest.client.post(f"{ACTIONS}/fn/rollback")
    # A PUT that sends no annotations keeps the deployer's, not the server's.
    updated = await put(guest, "fn", {"limits": {"memory": 512}})
    assert updated["version"] == "0.0.4"
    assert [a["key"] for a in updated["annotations"]] == ["exec"]


async def test_rollback_errors_name_what_is_wrong(guest: Tenant) -> None:
    c = guest.client
    await put(guest, "fn", body(1))
    r = await c.post(f"{ACTIONS}/fn/rollback")
    assert r.status_code == 409 and "no version before 0.0.1" in r.json()["error"]
    await put(guest, "fn", body(2))

    r = await c.post(f"{ACTIONS}/fn/rollback", json={"version": "0.0.9"})
    assert r.status_code == 404, r.text
    assert "version 0.0.9 of function 'fn' does not exist" in r.json()["error"]
    assert "0.0.1, 0.0.2" in r.json()["error"]
    for bad, words in [
        ({"version": "latest"}, "version must look like 0.0.2"),
        ({"version": 2}, "version must be a string"),
        ({"to": "0.0.1"}, "to"),
    ]:
        r = await c.post(f"{ACTIONS}/fn/rollback", json=bad)
        assert r.status_code == 400 and words in r.json()["error"], (bad, r.text)
    r = await c.post(f"{ACTIONS}/fn/rollback", content=b"[1]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = await c.post(f"{ACTIONS}/nothing/rollback")
    assert r.status_code == 404 and "nothing" in r.json()["error"]
    r = await c.get(f"{ACTIONS}/nothing/versions")
    assert r.status_code == 404 and "nothing" in r.json()["error"]
    # Nothing was made by the refused rollbacks.
    assert [v["version"] for v in await versions(guest, "fn")] == ["0.0.2", "0.0.1"]


async def test_functions_named_versions_and_rollback_keep_their_paths(guest: Tenant) -> None:
    """``.../actions/pkg/rollback`` is OpenWhisk's path of function rollback in pkg."""
    await guest.client.put(f"{PACKAGES}/pkg", json={})
    await put(guest, "pkg/rollback", body(7))
    await put(guest, "pkg/versions", body(8))
    assert await runs(guest, "pkg/rollback") == ("0.0.1", 7)
    got = await guest.client.get(f"{ACTIONS}/pkg/versions")
    assert got.status_code == 200 and got.json()["name"] == "versions"
    # Their own versions, by the path with a package.
    assert len(await versions(guest, "pkg/rollback")) == 1


async def test_retention_keeps_the_last_versions(guest: Tenant) -> None:
    total = VERSIONS_KEPT + 3
    for n in range(1, total + 1):
        await put(guest, "fn", body(n))
    listed = await versions(guest, "fn")
    assert len(listed) == VERSIONS_KEPT
    assert listed[0]["version"] == f"0.0.{total}"
    assert listed[-1]["version"] == f"0.0.{total - VERSIONS_KEPT + 1}"
    r = await guest.client.post(f"{ACTIONS}/fn/rollback", json={"version": "0.0.1"})
    assert r.status_code == 404 and "0.0.1" in r.json()["error"]
    # A rollback to the oldest kept one makes a version too, and prunes the next oldest.
    oldest = listed[-1]["version"]
    r = await guest.client.post(f"{ACTIONS}/fn/rollback", json={"version": oldest})
    assert r.status_code == 200, r.text
    after = await versions(guest, "fn")
    assert len(after) == VERSIONS_KEPT and after[-1]["version"] == listed[-2]["version"]
    assert await runs(guest, "fn") == (f"0.0.{total + 1}", total - VERSIONS_KEPT + 1)
