"""PublicFastPath: which requests go straight to the web and gateway endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from tests.api.conftest import Tenant
from wisp.web.fastpath import PublicFastPath


def recorder() -> tuple[PublicFastPath, list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    async def web(request: Request) -> Response:
        seen.append(("web", dict(request.path_params)))
        return PlainTextResponse("web")

    async def gateway(request: Request) -> Response:
        seen.append(("gateway", dict(request.path_params)))
        return PlainTextResponse("gw")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(("app", scope["path"]))
        await PlainTextResponse("app")(scope, receive, send)

    return PublicFastPath(app, web, gateway), seen


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        (
            "POST",
            "/api/v1/web/ns/default/fn.json",
            ("web", {"ns": "ns", "path": "default/fn.json"}),
        ),
        ("GET", "/api/v1/web/ns/", ("web", {"ns": "ns", "path": ""})),
        ("HEAD", "/gw/ns/shop/items/1", ("gateway", {"ns": "ns", "path": "shop/items/1"})),
        ("OPTIONS", "/gw/ns/", ("gateway", {"ns": "ns", "path": ""})),
        # Not theirs: the app's router decides (as it did before the fast path).
        ("POST", "/api/v1/web/whisk.system/apimgmt/createApi.http", ("app", None)),
        ("GET", "/api/v1/web/whisk-system/apimgmt/getApi", ("app", None)),
        ("TRACE", "/gw/ns/shop", ("app", None)),
        ("GET", "/gw/ns", ("app", None)),
        ("GET", "/gw//x", ("app", None)),
        ("GET", "/api/v1/webx/ns/a", ("app", None)),
        ("GET", "/api/v1/namespaces/_/actions", ("app", None)),
    ],
)
async def test_dispatch(method: str, path: str, expected: tuple[str, Any]) -> None:
    fast, seen = recorder()
    transport = httpx.ASGITransport(app=fast)
    async with httpx.AsyncClient(transport=transport, base_url="http://wisp.test") as client:
        r = await client.request(method, path)
    assert r.status_code == 200
    kind, params = seen[0]
    assert kind == expected[0]
    if kind != "app":
        assert params == expected[1]


async def test_the_app_answers_the_same_through_it(
    guest: Tenant, anonymous: httpx.AsyncClient
) -> None:
    # Errors, methods and request ids come out as they do through the router.
    r = await anonymous.get(f"/api/v1/web/{guest.name}/default/missing")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert r.headers["x-request-id"]
    assert (await anonymous.request("TRACE", f"/gw/{guest.name}/x")).status_code == 405
    r = await anonymous.get(f"/gw/{guest.name}/nothing/here")
    assert r.status_code == 404 and r.json()["error"] == "No gateway route matches this path."
