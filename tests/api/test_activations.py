"""Activations: list (filters, paging, docs), get, result, logs, 404 text, retention."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tests.api.conftest import ACTIONS, ACTIVATIONS, PACKAGES, Tenant, hello
from wisp.api.activations import normalize_name
from wisp.api.retention import purge_expired
from wisp.errors import ACTIVATION_NOT_FOUND
from wisp.platform import Platform


async def invoke(client: httpx.AsyncClient, path: str, **params: object) -> str:
    r = await client.post(f"{ACTIONS}/{path}?blocking=true", json=params)
    assert r.status_code in (200, 502), r.text
    aid: str = r.json()["activationId"]
    return aid


@pytest.fixture
async def ids(guest: Tenant) -> list[str]:
    c = guest.client
    assert (await c.put(f"{PACKAGES}/pkg", json={})).status_code == 200
    assert (await c.put(f"{ACTIONS}/a", json=hello())).status_code == 200
    assert (await c.put(f"{ACTIONS}/pkg/b", json=hello())).status_code == 200
    out = []
    for path, params in [("a", {"n": 1}), ("pkg/b", {"n": 2}), ("a", {"fail": 1})]:
        out.append(await invoke(c, path, **params))
        # Records of the same millisecond have no defined order: keep them apart.
        await asyncio.sleep(0.003)
    return out


async def test_get_result_logs(guest: Tenant, ids: list[str]) -> None:
    c = guest.client
    record = (await c.get(f"{ACTIVATIONS}/{ids[0]}")).json()
    assert record["activationId"] == ids[0] and record["name"] == "a"
    assert record["response"]["result"] == {"n": 1}
    assert {"key": "kind", "value": record["annotations"][1]["value"]} in record["annotations"]
    result = await c.get(f"{ACTIVATIONS}/{ids[0]}/result")
    assert result.json() == {
        "result": {"n": 1},
        "status": "success",
        "success": True,
        "size": len('{"n": 1}'),
    }
    failed = (await c.get(f"{ACTIVATIONS}/{ids[2]}/result")).json()
    assert failed["status"] == "application error" and failed["success"] is False
    logs = await c.get(f"{ACTIVATIONS}/{ids[0]}/logs")
    assert logs.json() == {"logs": ["2026-01-01T00:00:00.000000Z stdout: ['n']"]}


@pytest.mark.parametrize("suffix", ["", "/result", "/logs"])
async def test_missing_activation_is_404_with_do_text(guest: Tenant, suffix: str) -> None:
    r = await guest.client.get(f"{ACTIVATIONS}/{'0' * 32}{suffix}")
    assert r.status_code == 404
    assert r.json() == {"error": ACTIVATION_NOT_FOUND, "code": "not_found"}


async def test_other_namespace_cannot_read_activations(
    guest: Tenant, other: Tenant, ids: list[str]
) -> None:
    assert (await other.client.get(f"{ACTIVATIONS}/{ids[0]}")).status_code == 404
    assert (await other.client.get(ACTIVATIONS)).json() == []
    forbidden = await other.client.get(f"/api/v1/namespaces/{guest.name}/activations/{ids[0]}")
    assert forbidden.status_code == 403


async def test_list_summaries_newest_first(guest: Tenant, ids: list[str]) -> None:
    items = (await guest.client.get(ACTIVATIONS)).json()
    assert [i["activationId"] for i in items] == ids[::-1]
    assert set(items[0]) == {
        "activationId",
        "name",
        "namespace",
        "version",
        "start",
        "end",
        "duration",
        "statusCode",
        "annotations",
        "publish",
    }
    assert items[0]["statusCode"] == 1
    docs = (await guest.client.get(f"{ACTIVATIONS}?docs=true")).json()
    assert docs[0]["response"]["result"] == {"error": "it failed"}


async def test_list_filters_and_paging(guest: Tenant, ids: list[str]) -> None:
    async def listed(query: str) -> list[str]:
        r = await guest.client.get(f"{ACTIVATIONS}?{query}")
        assert r.status_code == 200, r.text
        return [i["activationId"] for i in r.json()]

    assert await listed("name=a") == [ids[2], ids[0]]
    assert await listed("name=default/a") == [ids[2], ids[0]]
    assert await listed("name=pkg/b") == [ids[1]]
    assert await listed(f"name=/{guest.name}/pkg/b") == [ids[1]]
    assert await listed("name=pkg/") == [ids[1]]
    assert await listed("limit=1") == [ids[2]]
    assert await listed("limit=1&skip=1") == [ids[1]]
    future = int(time.time() * 1000) + 60_000
    assert await listed(f"since={future}") == []
    assert await listed(f"upto={future}") == ids[::-1]
    assert await listed("upto=1") == []


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("since=x", "since"),
        ("upto=-3", "upto"),
        ("docs=perhaps", "docs"),
        ("limit=500", "limit"),
        ("since=9223372036854775808", "since"),  # past SQL's 64-bit integers: was a 500
        ("upto=191901684337042119030929883136", "upto"),
    ],
)
async def test_bad_list_queries_are_400(guest: Tenant, query: str, name: str) -> None:
    r = await guest.client.get(f"{ACTIVATIONS}?{query}")
    assert r.status_code == 400 and f"'{name}'" in r.json()["error"]


def test_normalize_name() -> None:
    assert normalize_name("fn") == "fn"
    assert normalize_name("default/fn") == "fn"
    assert normalize_name("pkg/fn") == "pkg/fn"
    assert normalize_name("/guest/pkg/fn") == "pkg/fn"
    assert normalize_name("guest/pkg/fn") == "pkg/fn"
    assert normalize_name("/guest/fn") == "fn"
    assert normalize_name("pkg/") == "pkg/"


async def test_purge_expired(guest: Tenant, ids: list[str], platform: Platform) -> None:
    hour = 3_600_000
    now = int(time.time() * 1000)
    assert await purge_expired(platform, now_ms=now) == 0  # all younger than 72 h
    assert await purge_expired(platform, now_ms=now + 72 * hour + 60_000) == len(ids)
    assert (await guest.client.get(f"{ACTIVATIONS}/{ids[0]}")).status_code == 404
