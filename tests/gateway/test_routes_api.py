"""/api/v1/namespaces/_/routes: declaring, listing, deleting; secrets never come back."""

from __future__ import annotations

import pytest

from tests.api.conftest import Tenant
from tests.gateway.conftest import ROUTES, make_route


async def test_create_list_delete(guest: Tenant, echo: str) -> None:
    made = await make_route(guest)
    assert made["basePath"] == "/shop" and made["path"] == "/items/{id}"
    assert made["policy"] == {"type": "none"} and made["function"] == "echo"
    listed = (await guest.client.get(ROUTES)).json()
    assert [(r["method"], r["path"]) for r in listed] == [("GET", "/items/{id}")]
    r = await guest.client.put(
        ROUTES,
        json={
            "basePath": "/shop",
            "path": "/items/{id}",
            "function": "echo",
            "responseType": "json",
        },
    )
    assert r.status_code == 409
    r = await guest.client.delete(ROUTES, params={"basePath": "/shop", "path": "/items/{id}"})
    assert r.json() == {"deleted": 1}
    r = await guest.client.delete(ROUTES, params={"basePath": "/shop"})
    assert r.status_code == 404
    assert (await guest.client.get(ROUTES)).json() == []


async def test_secrets_are_hashed_and_never_returned(guest: Tenant, echo: str) -> None:
    made = await make_route(guest, policy={"type": "basic", "users": {"ada": "correct horse"}})
    assert made["policy"] == {"type": "basic", "users": ["ada"]}
    made = await make_route(guest, path="/k", policy={"type": "api-key"})
    key = made["apiKeys"][0]  # type: ignore[index]
    assert isinstance(key, str) and len(key) >= 32
    listed = (await guest.client.get(ROUTES)).text
    assert "correct horse" not in listed and key not in listed and "pbkdf2" not in listed


async def test_same_route_again_changes_nothing(guest: Tenant, echo: str) -> None:
    doc = {
        "policy": {"type": "basic", "users": {"ada": "correct horse"}},
        "rateLimit": {"requests": 5},
    }
    first = await make_route(guest, **doc)
    body = {"basePath": "/shop", "path": "/items/{id}", "method": "GET", "function": "echo", **doc}
    dry = (await guest.client.put(ROUTES, params={"dryRun": "true"}, json=body)).json()
    assert dry["exists"] is True and dry["changes"] == []
    again = (await guest.client.put(ROUTES, json=body)).json()  # no overwrite needed: no change
    assert again["updated"] == first["updated"]
    body["policy"] = {"type": "basic", "users": {"ada": "another secret"}}
    dry = (await guest.client.put(ROUTES, params={"dryRun": "true"}, json=body)).json()
    assert dry["changes"] == ["policy changed"]
    r = await guest.client.put(ROUTES, params={"overwrite": "true"}, json=body)
    assert r.status_code == 200


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"path": "items"}, "path must be a path"),
        ({"path": "/a b"}, "segment 'a b'"),
        ({"path": "/{id}/{id}"}, "named twice"),
        ({"method": "TRACE"}, "method must be one of"),
        ({"function": "nope"}, "'nope' does not exist"),
        ({"function": "a/b/c"}, "function must be FN or PKG/FN"),
        ({"policy": {"type": "magic"}}, "policy.type must be one of"),
        ({"policy": {"type": "basic", "users": {"ada": "short"}}}, "8 or more"),
        ({"policy": {"type": "api-key", "keys": ["tiny"]}}, "16 or more"),
        ({"policy": {"type": "jwt", "jwks": "ftp://x"}}, "policy.jwks"),
        ({"policy": {"type": "jwt", "jwks": "/k.json", "issuer": "i"}}, "policy.jwks"),
        (
            {"policy": {"type": "jwt", "jwks": "https://93.184.216.34/k", "issuer": "i"}},
            "policy.audience",
        ),
        ({"ip": {"allow": ["10.0.0.0/33"]}}, "ip.allow"),
        ({"rateLimit": {"requests": 0}}, "rateLimit.requests"),
        ({"maxBody": 10**9}, "maxBody must be at most"),
        ({"host": "bad host!"}, "host must be"),
        ({"colour": "red"}, "unknown field 'colour'"),
    ],
)
async def test_bad_routes_are_400(
    guest: Tenant, echo: str, doc: dict[str, object], fragment: str
) -> None:
    body = {"basePath": "/shop", "path": "/items", "function": "echo", **doc}
    r = await guest.client.put(ROUTES, json=body)
    assert r.status_code in (400, 404), r.text
    assert fragment in r.json()["error"]


async def test_routes_are_per_namespace(guest: Tenant, other: Tenant, echo: str) -> None:
    await make_route(guest)
    assert (await other.client.get(ROUTES)).json() == []
    r = await other.client.delete(ROUTES, params={"basePath": "/shop"})
    assert r.status_code == 404
    assert len((await guest.client.get(ROUTES)).json()) == 1
    assert (await guest.client.get("/api/v1/namespaces/someone-else/routes")).status_code == 403
