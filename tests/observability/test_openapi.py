"""The OpenAPI document and /docs, in-process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import app, platform, settings, store, store_kind  # noqa: F401
from wisp.api.openapi import OPERATIONS
from wisp.namespaces import create_namespace
from wisp.store.base import Store


@pytest.fixture
async def client(app: Starlette, store: Store) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    _, auth = create_namespace(store, "docs")
    uuid, _, key = auth.partition(":")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wisp.test", auth=(uuid, key)
    ) as c:
        yield c


async def test_the_document_describes_the_api(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["basic"]["scheme"] == "basic"
    invoke = doc["paths"]["/api/v1/namespaces/{ns}/actions/{pkg}/{fn}"]["post"]
    assert {"200", "202", "502", "default"} <= set(invoke["responses"])
    assert [p["name"] for p in invoke["parameters"]] == [
        "ns",
        "pkg",
        "fn",
        "blocking",
        "result",
        "timeout",
    ]
    assert doc["paths"]["/api/v1"]["get"]["security"] == []
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == len(OPERATIONS)
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', response.text))
    assert refs <= set(doc["components"]["schemas"])


async def test_every_documented_read_is_routed(client: httpx.AsyncClient) -> None:
    body = {"exec": {"kind": "python:default", "code": "def main(a):\n  return a\n"}}
    await client.put("/api/v1/namespaces/_/packages/p", json={})
    await client.put("/api/v1/namespaces/_/actions/p/f", json=body)
    await client.put("/api/v1/namespaces/_/actions/f", json=body)
    values = {"ns": "_", "pkg": "p", "fn": "f", "id": "0" * 32}
    for method, path, *_ in OPERATIONS:
        if method != "get" or path.endswith("/stream"):
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        response = await client.get(url)
        # 404 only where the activation id is made up: then it is ours, not Starlette's.
        assert response.status_code in (200, 404), (path, response.status_code)
        if response.status_code == 404:
            assert "activation" in response.json()["error"], path


async def test_docs_page_loads_its_script(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/docs/docs.js"' in page.text
    script = await client.get("/docs/docs.js")
    assert script.status_code == 200 and "openapi.json" in script.text
