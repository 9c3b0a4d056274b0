"""OpenWhisk's apimgmt calls (createApi, getApi, deleteApi) over the gateway's routes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.conftest import Tenant
from tests.gateway.conftest import ROUTES

MGMT = "/api/v1/web/whisk.system/apimgmt"


def apidoc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "namespace": "_",
        "gatewayBasePath": "/shop",
        "gatewayPath": "/items/{id}",
        "gatewayMethod": "get",
        "id": "API:_:/shop",
        "action": {"name": "echo", "namespace": "_", "backendMethod": "GET"},
    }
    doc.update(changes)
    return {"apidoc": doc}


async def test_create_get_delete_in_openwhisk_shapes(
    guest: Tenant, echo: str, public: httpx.AsyncClient
) -> None:
    r = await guest.client.post(f"{MGMT}/createApi", json=apidoc())
    assert r.status_code == 200, r.text
    api = r.json()
    assert api["id"] == f"API:{guest.name}:/shop"
    assert api["value"]["gwApiUrl"] == f"http://wisp.test/gw/{guest.name}/shop"
    operation = api["value"]["apidoc"]["paths"]["/items/{id}"]["get"]
    assert operation["x-openwhisk"]["action"] == "echo"
    assert operation["x-openwhisk"]["package"] == "default"
    # It is a real gateway route: served under gwApiUrl, listed by Wisp's own API.
    served = await public.get(f"/gw/{guest.name}/shop/items/7")
    assert served.status_code == 200 and served.json()["id"] == "7"
    [listed] = (await guest.client.get(ROUTES)).json()
    # createApi's default response type is OpenWhisk's: json.
    assert (listed["method"], listed["responseType"]) == ("GET", "json")

    second = apidoc(gatewayPath="/items", gatewayMethod="POST")
    r = await guest.client.post(f"{MGMT}/createApi", json=second)
    assert set(r.json()["value"]["apidoc"]["paths"]) == {"/items/{id}", "/items"}

    got = (await guest.client.get(f"{MGMT}/getApi", params={"basepath": "/shop"})).json()
    assert [a["value"]["apidoc"]["basePath"] for a in got["apis"]] == ["/shop"]
    only = await guest.client.get(
        f"{MGMT}/getApi", params={"basepath": "/shop", "relpath": "/items", "operation": "post"}
    )
    assert list(only.json()["apis"][0]["value"]["apidoc"]["paths"]) == ["/items"]
    none = await guest.client.get(f"{MGMT}/getApi", params={"basepath": "/other"})
    assert none.json() == {"apis": []}

    r = await guest.client.delete(
        f"{MGMT}/deleteApi",
        params={"basepath": "/shop", "relpath": "/items", "operation": "POST", "force": "true"},
    )
    assert r.status_code == 200 and r.json() == {}
    assert [x["path"] for x in (await guest.client.get(ROUTES)).json()] == ["/items/{id}"]
    r = await guest.client.delete(f"{MGMT}/deleteApi", params={"basepath": "/shop"})
    assert r.status_code == 200
    assert (await public.get(f"/gw/{guest.name}/shop/items/7")).status_code == 404


async def test_nim_spelling_and_http_extension(guest: Tenant, echo: str) -> None:
    url = "/api/v1/web/whisk-system/apimgmt/createApi.http"
    r = await guest.client.post(url, json=apidoc(), params={"responsetype": "http"})
    assert r.status_code == 200
    r = await guest.client.get("/api/v1/web/whisk-system/apimgmt/getApi.http")
    assert len(r.json()["apis"]) == 1
    assert (await guest.client.get(ROUTES)).json()[0]["responseType"] == "http"
    r = await guest.client.delete(
        "/api/v1/web/whisk-system/apimgmt/deleteApi.http", params={"basepath": "/shop"}
    )
    assert r.status_code == 200


async def test_routes_are_per_namespace(guest: Tenant, other: Tenant, echo: str) -> None:
    assert (await guest.client.post(f"{MGMT}/createApi", json=apidoc())).status_code == 200
    assert (await other.client.get(f"{MGMT}/getApi")).json() == {"apis": []}
    r = await other.client.delete(f"{MGMT}/deleteApi", params={"basepath": "/shop"})
    assert r.status_code == 404
    # Another namespace's function cannot be put behind one's own route.
    foreign = apidoc(action={"name": "echo", "namespace": guest.name})
    r = await other.client.post(f"{MGMT}/createApi", json=foreign)
    assert r.status_code == 403


async def test_calls_need_the_callers_credentials(public: httpx.AsyncClient) -> None:
    assert (await public.post(f"{MGMT}/createApi", json=apidoc())).status_code == 401
    assert (await public.get(f"{MGMT}/getApi")).status_code == 401
    assert (await public.delete(f"{MGMT}/deleteApi?basepath=/shop")).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "apidoc is required"),
        ({"apidoc": "{not json"}, 400, "apidoc is not valid JSON"),
        (apidoc(gatewayPath=None), 400, "apidoc.gatewayPath is required"),
        (apidoc(action=None), 400, "apidoc.action is required"),
        (apidoc(action={"namespace": "_"}), 400, "apidoc.action.name is required"),
        ({"apidoc": {"namespace": "_", "swagger": {}}}, 400, "apidoc.swagger is not supported"),
        (apidoc(gatewayMethod="FETCH"), 400, "method must be one of"),
        (apidoc(gatewayPath="items"), 400, "path must be a path starting with '/'"),
        (apidoc(action={"name": "missing", "namespace": "_"}), 404, "missing"),
    ],
)
async def test_bad_requests_name_the_field(
    guest: Tenant, echo: str, body: dict[str, Any], status: int, message: str
) -> None:
    r = await guest.client.post(f"{MGMT}/createApi", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


async def test_delete_needs_a_basepath(guest: Tenant) -> None:
    r = await guest.client.delete(f"{MGMT}/deleteApi")
    assert r.status_code == 400 and "basepath" in r.json()["error"]


async def test_json_string_apidoc_is_accepted(guest: Tenant, echo: str) -> None:
    body = {"apidoc": json.dumps(apidoc()["apidoc"])}
    assert (await guest.client.post(f"{MGMT}/createApi", json=body)).status_code == 200
