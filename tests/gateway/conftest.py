"""Gateway tests: the API in-process (in-memory store, FakeInvoker echoing arguments)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import (  # noqa: F401  (fixtures)
    ACTIONS,
    Tenant,
    app,
    entities,
    guest,
    invoker,
    other,
    platform,
    settings,
    store,
    store_kind,
)

ROUTES = "/api/v1/namespaces/_/routes"
ECHO = {"exec": {"kind": "python:default", "code": "def main(args):\n    return args\n"}}


def client_from(app: Starlette, ip: str) -> httpx.AsyncClient:  # noqa: F811
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://wisp.test")


@pytest.fixture
async def public(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with client_from(app, "203.0.113.7") as client:
        yield client


@pytest.fixture
async def echo(guest: Tenant) -> str:  # noqa: F811
    r = await guest.client.put(f"{ACTIONS}/echo", json=ECHO)
    assert r.status_code == 200
    return "echo"


async def make_route(tenant: Tenant, **doc: object) -> dict[str, object]:
    body = {"basePath": "/shop", "path": "/items/{id}", "method": "GET", "function": "echo"}
    body.update(doc)
    r = await tenant.client.put(ROUTES, json=body)
    assert r.status_code == 200, r.text
    result: dict[str, object] = r.json()
    return result
