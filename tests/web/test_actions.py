"""/api/v1/web/...: web functions in-process, over the FakeInvoker (results echo arguments)."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.api.conftest import ACTIONS, ACTIVATIONS, PACKAGES, PAYLOAD_MAX, FakeInvoker, Tenant
from tests.web.conftest import WEB, web_action

HEADER = "x-openwhisk-activation-id"


@pytest.fixture
async def url(guest: Tenant) -> str:
    r = await guest.client.put(f"{ACTIONS}/echo", json=web_action(parameters={"bound": "yes"}))
    assert r.status_code == 200, r.text
    return f"{WEB}/{guest.name}/default/echo"


async def test_arguments_carry_the_request(anonymous: httpx.AsyncClient, url: str) -> None:
    r = await anonymous.post(
        f"{url}.json?name=query&q=1", json={"name": "body"}, headers={"X-Thing": "t"}
    )
    assert r.status_code == 200, r.text
    args = r.json()
    assert args["name"] == "body" and args["q"] == "1"  # the body wins over the query
    assert args["bound"] == "yes"
    assert args["__ow_method"] == "post"
    assert args["__ow_path"] == ""
    assert args["__ow_headers"]["x-thing"] == "t"
    assert "__ow_body" not in args and "__ow_query" not in args
    http = args["http"]
    assert http["method"] == "POST" and http["path"] == ""
    assert http["queryString"] == "name=query&q=1"
    assert http["headers"]["x-thing"] == "t" and http["isBase64Encoded"] is False
    assert r.headers["access-control-allow-origin"] == "*"
    # What follows the function is __ow_path (and, for .json, a projection into the result).
    r = await anonymous.get(f"{url}.json/__ow_path")
    assert r.json() == "/__ow_path"


async def test_form_bodies_are_merged(anonymous: httpx.AsyncClient, url: str) -> None:
    r = await anonymous.post(f"{url}.json", data={"a": "1", "b": "two"})
    assert r.status_code == 200
    assert r.json()["a"] == "1" and r.json()["b"] == "two"


async def test_raw_gets_query_and_body_unparsed(
    guest: Tenant, anonymous: httpx.AsyncClient
) -> None:
    await guest.client.put(f"{ACTIONS}/raw", json=web_action("raw"))
    r = await anonymous.post(f"{WEB}/{guest.name}/default/raw.json?a=1", json={"x": 1})
    args = r.json()
    assert args["__ow_query"] == "a=1" and args["__ow_body"] == '{"x":1}'
    assert "a" not in args and "x" not in args
    binary = bytes(range(256))
    r = await anonymous.put(
        f"{WEB}/{guest.name}/default/raw.json",
        content=binary,
        headers={"content-type": "application/octet-stream"},
    )
    args = r.json()
    assert base64.b64decode(args["__ow_body"]) == binary
    assert args["http"]["isBase64Encoded"] is True and args["__ow_method"] == "put"


@pytest.mark.parametrize(
    "send",
    [
        {"params": {"__ow_method": "get"}},
        {"json": {"__ow_headers": {}}},
        {"data": {"__ow_user": "admin"}},
        {"params": {"__ow_body": "x"}},
    ],
)
async def test_setting_ow_parameters_is_refused(
    anonymous: httpx.AsyncClient, url: str, invoker: FakeInvoker, send: dict[str, object]
) -> None:
    r = await anonymous.post(f"{url}.json", **send)  # type: ignore[arg-type]
    assert r.status_code == 400
    assert "__ow_" in r.json()["error"] and r.json()["code"] == "bad_request"
    assert invoker.calls == []


async def test_bound_parameters_are_final(
    anonymous: httpx.AsyncClient, url: str, invoker: FakeInvoker
) -> None:
    for send in ({"params": {"bound": "no"}}, {"json": {"bound": "no"}}):
        r = await anonymous.post(f"{url}.json", **send)  # type: ignore[arg-type]
        assert r.status_code == 400 and "'bound'" in r.json()["error"]
    assert invoker.calls == []


async def test_functions_without_web_are_not_public(
    guest: Tenant, anonymous: httpx.AsyncClient, url: str
) -> None:
    await guest.client.put(f"{ACTIONS}/private", json=web_action(web=False))
    plain = {"exec": {"kind": "python:default", "code": "def main(a):\n    return a\n"}}
    await guest.client.put(f"{ACTIONS}/plain", json=plain)
    missing = await anonymous.get(f"{WEB}/{guest.name}/default/nothing")
    assert missing.status_code == 404
    for name in ("private", "plain"):
        r = await anonymous.get(f"{WEB}/{guest.name}/default/{name}")
        assert r.status_code == 404
        assert r.json() == missing.json()  # indistinguishable from a missing function
    # Even with the owner's credentials.
    r = await guest.client.get(f"{WEB}/{guest.name}/default/plain.json")
    assert r.status_code == 404
    assert (await anonymous.get(f"{WEB}/nobody-here/default/echo")).status_code == 404
    assert (await anonymous.get(f"{WEB}/{guest.name}/default")).status_code == 404


async def test_packaged_functions(guest: Tenant, anonymous: httpx.AsyncClient) -> None:
    await guest.client.put(f"{PACKAGES}/shop", json={"parameters": [{"key": "p", "value": 1}]})
    await guest.client.put(f"{ACTIONS}/shop/list", json=web_action())
    r = await anonymous.get(f"{WEB}/{guest.name}/shop/list.json")
    assert r.status_code == 200 and r.json()["p"] == 1
    r = await anonymous.get(f"{WEB}/{guest.name}/shop/list.json", params={"p": 2})
    assert r.status_code == 400  # package parameters are bound too


async def test_every_call_leaves_a_record(
    guest: Tenant, anonymous: httpx.AsyncClient, url: str
) -> None:
    r = await anonymous.get(f"{url}.json")
    activation_id = r.headers[HEADER]
    got = await guest.client.get(f"{ACTIVATIONS}/{activation_id}")
    assert got.status_code == 200 and got.json()["name"] == "echo"


async def test_http_results_become_responses(anonymous: httpx.AsyncClient, url: str) -> None:
    r = await anonymous.get(url, params={"statusCode": "201", "body": "<b>hi</b>"})
    assert r.status_code == 201 and r.text == "<b>hi</b>"
    assert r.headers["content-type"].startswith("text/html")
    r = await anonymous.get(f"{url}.http")
    assert r.status_code == 204 and r.content == b""
    r = await anonymous.post(url, json={"body": {"a": [1, 2]}})
    assert r.status_code == 200 and r.json() == {"a": [1, 2]}
    assert r.headers["content-type"] == "application/json"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    r = await anonymous.post(
        url,
        json={"headers": {"Content-Type": "image/png"}, "body": base64.b64encode(png).decode()},
    )
    assert r.status_code == 200 and r.content == png
    assert r.headers["content-type"] == "image/png"
    assert len(r.headers[HEADER]) == 32


async def test_extensions_project_the_result(anonymous: httpx.AsyncClient, url: str) -> None:
    r = await anonymous.get(f"{url}.text", params={"text": "plain words"})
    assert r.text == "plain words" and r.headers["content-type"].startswith("text/plain")
    r = await anonymous.get(f"{url}.html", params={"html": "<p>x</p>"})
    assert r.text == "<p>x</p>" and r.headers["content-type"].startswith("text/html")
    r = await anonymous.get(f"{url}.svg", params={"svg": "<svg/>"})
    assert r.text == "<svg/>" and r.headers["content-type"] == "image/svg+xml"
    r = await anonymous.get(f"{url}.json/http/method")
    assert r.json() == "GET"
    r = await anonymous.get(f"{url}.text")
    assert r.status_code == 400 and "'text'" in r.json()["error"]
    # An unknown extension is part of the name.
    assert (await anonymous.get(f"{url}.xml")).status_code == 404


async def test_failures_are_clean_502s(anonymous: httpx.AsyncClient, url: str) -> None:
    r = await anonymous.get(url, params={"fail": "1"})
    assert r.status_code == 502
    doc = r.json()
    assert doc == {
        "error": "it failed",
        "code": "application_error",
        "activationId": r.headers[HEADER],
    }
    r = await anonymous.get(url, params={"crash": "1"})
    assert r.status_code == 502 and r.json()["code"] == "action_developer_error"
    assert "Traceback" not in r.text


async def test_bad_http_results_are_502(anonymous: httpx.AsyncClient, url: str) -> None:
    r = await anonymous.get(url, params={"statusCode": "999", "body": "x"})
    assert r.status_code == 502 and "statusCode" in r.json()["error"]
    r = await anonymous.post(
        url, json={"headers": {"content-type": "image/png"}, "body": "not base64!"}
    )
    assert r.status_code == 502 and "base64" in r.json()["error"]


async def test_methods(anonymous: httpx.AsyncClient, url: str) -> None:
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        r = await anonymous.request(method, f"{url}.json")
        assert r.status_code == 200 and r.json()["__ow_method"] == method.lower()
    r = await anonymous.head(url, params={"body": "x"})
    assert r.status_code == 200
    r = await anonymous.request("TRACE", url)
    assert r.status_code == 405


async def test_options_answers_cors_without_running(
    guest: Tenant, anonymous: httpx.AsyncClient, url: str, invoker: FakeInvoker
) -> None:
    r = await anonymous.options(url, headers={"Access-Control-Request-Headers": "X-Custom"})
    assert r.status_code == 200 and invoker.calls == []
    assert r.headers["access-control-allow-origin"] == "*"
    assert (
        r.headers["access-control-allow-methods"] == "OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH"
    )
    assert r.headers["access-control-allow-headers"] == "X-Custom"
    await guest.client.put(f"{ACTIONS}/custom", json=web_action(custom_options=True))
    r = await anonymous.options(f"{WEB}/{guest.name}/default/custom.json")
    assert r.status_code == 200 and r.json()["__ow_method"] == "options"
    assert "access-control-allow-origin" not in r.headers
    assert len(invoker.calls) == 1


async def test_web_secure_secret(guest: Tenant, anonymous: httpx.AsyncClient) -> None:
    await guest.client.put(f"{ACTIONS}/secret", json=web_action(secure="s3cret"))
    url = f"{WEB}/{guest.name}/default/secret.json"
    assert (await anonymous.get(url)).status_code == 401
    r = await anonymous.get(url, headers={"X-Require-Whisk-Auth": "s3cre"})
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = await anonymous.get(url, headers={"X-Require-Whisk-Auth": "s3cret"})
    assert r.status_code == 200


async def test_web_secure_true_needs_basic_credentials(
    guest: Tenant, anonymous: httpx.AsyncClient
) -> None:
    await guest.client.put(f"{ACTIONS}/mine", json=web_action(secure=True))
    url = f"{WEB}/{guest.name}/default/mine.json"
    assert (await anonymous.get(url)).status_code == 401
    assert (await anonymous.get(url, auth=(guest.basic[0], "wrong"))).status_code == 401
    r = await guest.client.get(url)
    assert r.status_code == 200 and r.json()["__ow_user"] == guest.name


async def test_oversize_body_is_413(
    anonymous: httpx.AsyncClient, url: str, invoker: FakeInvoker
) -> None:
    r = await anonymous.post(url, content=b"x" * (PAYLOAD_MAX + 1))
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(4):
            yield b"y" * (PAYLOAD_MAX // 3)

    r = await anonymous.post(url, content=chunks())
    assert r.status_code == 413 and invoker.calls == []


async def test_slow_functions_answer_202(anonymous: httpx.AsyncClient, url: str) -> None:
    r = await anonymous.get(url, params={"slow": "1"})
    assert r.status_code == 202 and r.json() == {"activationId": r.headers[HEADER]}


async def test_namespaces_are_separate(
    guest: Tenant, other: Tenant, anonymous: httpx.AsyncClient, url: str
) -> None:
    # The URL names the namespace: another tenant's same-named function is its own.
    await other.client.put(f"{ACTIONS}/echo", json=web_action(web=False))
    assert (await anonymous.get(f"{WEB}/{other.name}/default/echo")).status_code == 404
    assert (await anonymous.get(url)).status_code == 204


async def test_underscore_namespace_is_refused_naming_the_url(
    guest: Tenant, anonymous: httpx.AsyncClient, url: str
) -> None:
    # OpenWhisk's web URLs need an explicit namespace; a clear 404 says which URL works.
    r = await anonymous.get(f"{WEB}/_/default/echo.json")
    assert r.status_code == 404
    assert "'_' (the caller's namespace in the REST API) is not accepted" in r.json()["error"]
    assert "/api/v1/web/<namespace>/default/echo.json" in r.json()["error"]
    r = await guest.client.get(f"{WEB}/_/default/echo.json")
    assert r.status_code == 404
    assert f"use /api/v1/web/{guest.name}/default/echo.json" in r.json()["error"]
    assert (await anonymous.get(f"{url}.json")).status_code == 200
