"""/gw/{namespace}/...: policies, rate limits, CORS, body limits, isolation."""

from __future__ import annotations

import base64

import httpx
from starlette.applications import Starlette

from tests.api.conftest import ACTIONS, PAYLOAD_MAX, FakeInvoker, Tenant
from tests.gateway.conftest import ECHO, client_from, make_route

HEADER = "x-openwhisk-activation-id"


async def test_open_route_passes_path_parameters(
    guest: Tenant, echo: str, public: httpx.AsyncClient
) -> None:
    await make_route(guest, responseType="json")
    r = await public.get(f"/gw/{guest.name}/shop/items/42?colour=red")
    assert r.status_code == 200, r.text
    args = r.json()
    assert args["id"] == "42" and args["colour"] == "red"
    assert args["__ow_method"] == "get" and args["http"]["method"] == "GET"
    record = await guest.client.get(f"/api/v1/namespaces/_/activations/{r.headers[HEADER]}")
    assert record.status_code == 200


async def test_http_response_type_and_matching(
    guest: Tenant, echo: str, public: httpx.AsyncClient
) -> None:
    await make_route(guest)  # responseType http
    await make_route(guest, path="/items/new", method="POST")
    r = await public.get(
        f"/gw/{guest.name}/shop/items/7", params={"body": "hello", "statusCode": "201"}
    )
    assert r.status_code == 201 and r.text == "hello"
    r = await public.post(f"/gw/{guest.name}/shop/items/new", json={"body": {"made": True}})
    assert r.json() == {"made": True}  # the literal route wins over /items/{id}
    r = await public.delete(f"/gw/{guest.name}/shop/items/7")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert (await public.get(f"/gw/{guest.name}/shop/other")).status_code == 404
    assert (await public.get(f"/gw/{guest.name}/shop/items/7/deeper")).status_code == 404


async def test_cross_namespace_isolation(
    guest: Tenant, other: Tenant, echo: str, public: httpx.AsyncClient
) -> None:
    await make_route(guest)
    assert (await public.get(f"/gw/{other.name}/shop/items/1")).status_code == 404
    # A route may only name its own namespace's functions.
    r = await other.client.put(
        "/api/v1/namespaces/_/routes",
        json={"basePath": "/x", "path": "/y", "function": "echo"},
    )
    assert r.status_code == 404


async def test_basic_policy(
    guest: Tenant, echo: str, public: httpx.AsyncClient, invoker: FakeInvoker
) -> None:
    await make_route(
        guest, responseType="json", policy={"type": "basic", "users": {"ada": "correct horse"}}
    )
    url = f"/gw/{guest.name}/shop/items/1"
    r = await public.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert (await public.get(url, auth=("ada", "wrong horse"))).status_code == 401
    assert (await public.get(url, auth=("bob", "correct horse"))).status_code == 401
    assert (await public.get(url, headers={"Authorization": "Basic !!!"})).status_code == 401
    assert invoker.calls == []  # nothing ran before the policy passed
    for _ in range(2):  # the second is served from the verified cache
        r = await public.get(url, auth=("ada", "correct horse"))
        assert r.status_code == 200 and r.json()["__ow_user"] == "ada"


async def test_api_key_policy(guest: Tenant, echo: str, public: httpx.AsyncClient) -> None:
    key = "k" * 24
    await make_route(
        guest, responseType="json", policy={"type": "api-key", "keys": [key], "query": "api_key"}
    )
    url = f"/gw/{guest.name}/shop/items/1"
    assert (await public.get(url)).status_code == 401
    assert (await public.get(url, headers={"X-API-Key": "x" * 24})).status_code == 401
    r = await public.get(url, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json()["__ow_user"].startswith("key-")
    assert (await public.get(url, params={"api_key": key})).status_code == 200


async def test_rate_limit_answers_429_with_retry_after(
    guest: Tenant, echo: str, public: httpx.AsyncClient, app: Starlette
) -> None:
    await make_route(guest, rateLimit={"requests": 2, "per": 3600, "by": "ip"})
    url = f"/gw/{guest.name}/shop/items/1"
    assert [(await public.get(url)).status_code for _ in range(2)] == [204, 204]
    r = await public.get(url)
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert r.json()["code"] == "too_many_requests"
    async with client_from(app, "198.51.100.9") as elsewhere:  # another client's own bucket
        assert (await elsewhere.get(url)).status_code == 204


async def test_cors(
    guest: Tenant, echo: str, public: httpx.AsyncClient, invoker: FakeInvoker
) -> None:
    await make_route(
        guest, method="POST", cors={"origins": ["https://app.example"], "headers": ["Content-Type"]}
    )
    url = f"/gw/{guest.name}/shop/items/1"
    r = await public.options(
        url, headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert r.status_code == 204 and invoker.calls == []
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    assert r.headers["access-control-allow-methods"] == "POST"
    assert r.headers["access-control-allow-headers"] == "Content-Type"
    r = await public.options(
        url, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    r = await public.post(url, headers={"Origin": "https://app.example"})
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    r = await public.post(url, headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


async def test_body_limit_and_binary_bodies(
    guest: Tenant, echo: str, public: httpx.AsyncClient, invoker: FakeInvoker
) -> None:
    await make_route(guest, method="POST", responseType="json", maxBody=1000)
    url = f"/gw/{guest.name}/shop/items/1"
    r = await public.post(url, content=b"x" * 1001)
    assert r.status_code == 413 and invoker.calls == []
    data = bytes(range(256)) * 3
    r = await public.post(url, content=data, headers={"content-type": "image/png"})
    assert r.status_code == 200
    assert base64.b64decode(r.json()["__ow_body"]) == data
    r = await public.post(url, params={"__ow_user": "root"})
    assert r.status_code == 400 and "__ow_user" in r.json()["error"]
    assert PAYLOAD_MAX > 1000


async def test_deleted_function_is_404(guest: Tenant, echo: str, public: httpx.AsyncClient) -> None:
    await make_route(guest)
    await guest.client.delete(f"{ACTIONS}/echo")
    r = await public.get(f"/gw/{guest.name}/shop/items/1")
    assert r.status_code == 404 and "echo" in r.json()["error"]


async def test_host_routes(guest: Tenant, echo: str, app: Starlette) -> None:
    await make_route(guest, responseType="json", host="api.example.com")
    async with client_from(app, "203.0.113.7") as client:
        r = await client.get("http://api.example.com/shop/items/5")
        assert r.status_code == 200 and r.json()["id"] == "5"
        r = await client.get("http://other.example.com/shop/items/5")
        assert r.status_code == 404
        assert (await client.get("http://api.example.com/api/v1")).status_code == 200


async def test_a_route_may_name_an_alias_or_a_version(
    guest: Tenant, public: httpx.AsyncClient
) -> None:
    for n in (1, 2):  # the FakeInvoker answers with the arguments: n tells versions apart
        body = {**ECHO, "parameters": [{"key": "n", "value": n}]}
        assert (await guest.client.put(f"{ACTIONS}/fn?overwrite=true", json=body)).is_success
    live = await guest.client.put(f"{ACTIONS}/fn/aliases/live", json={"version": "0.0.1"})
    assert live.status_code == 200, live.text
    await make_route(guest, function="fn:live", path="/live", responseType="json")
    await make_route(guest, function="fn:0.0.2", path="/pinned", responseType="json")
    await make_route(guest, function="fn", path="/bare", responseType="json")
    got = {p: (await public.get(f"/gw/{guest.name}/shop/{p}")).json()["n"] for p in
           ("live", "pinned", "bare")}  # fmt: skip
    assert got == {"live": 1, "pinned": 2, "bare": 2}
    await guest.client.put(f"{ACTIONS}/fn/aliases/live", json={"version": "0.0.2"})
    assert (await public.get(f"/gw/{guest.name}/shop/live")).json()["n"] == 2
    r = await guest.client.put(
        "/api/v1/namespaces/_/routes", json={"basePath": "/shop", "path": "/x", "function": "fn:no"}
    )
    assert r.status_code == 404 and "alias 'no'" in r.json()["error"]
