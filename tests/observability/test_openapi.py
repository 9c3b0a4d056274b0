"""The OpenAPI document and /docs, in-process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import app, platform, settings, store, store_kind  # noqa: F401
from wisp.api.openapi import OPERATIONS
from wisp.api.openapi import document as openapi_document
from wisp.namespaces import create_namespace
from wisp.store.base import Store

PUBLIC_CALLS = ("/api/v1/web/", "/gw/")


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
        "Idempotency-Key",
        "traceparent",
        "tracestate",
        "X-Request-Id",
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
    assert (await client.put("/api/v1/namespaces/_/triggers/t", json={})).status_code == 200
    rule = {"trigger": "t", "action": "f"}
    assert (await client.put("/api/v1/namespaces/_/rules/r", json=rule)).status_code == 200
    for fn in ("f", "p/f"):
        live = await client.put(f"/api/v1/namespaces/_/actions/{fn}/aliases/live", json={
            "version": "0.0.1"})  # fmt: skip
        assert live.status_code == 200, live.text
    values = {"ns": "_", "pkg": "p", "fn": "f", "id": "0" * 32, "trigger": "t", "rule": "r",
              "alias": "live"}  # fmt: skip
    for method, path, *_ in OPERATIONS:
        if method != "get" or path.endswith("/stream") or path.startswith(PUBLIC_CALLS):
            continue  # public calls reach functions and routes: their own suites cover them
        url = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
        response = await client.get(url)
        # 404 only where the activation (or dead letter) id is made up: then it is
        # ours, not Starlette's.
        assert response.status_code in (200, 404), (path, response.status_code)
        if response.status_code == 404:
            error = response.json()["error"]
            assert "activation" in error or "dead letter" in error, path


async def test_docs_page_loads_its_script(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/docs/docs.js"' in page.text
    script = await client.get("/docs/docs.js")
    assert script.status_code == 200 and "openapi.json" in script.text


def _canonical(path: str) -> str:
    """A path with its parameters unnamed, and the aliases routed for clients folded:
    trailing slashes, apimgmt's ``.http`` extension and nim's ``whisk-system``."""
    path = re.sub(r"\{[^}]*\}", "{}", path).rstrip("/") or "/"
    path = path.replace("/whisk-system/", "/whisk.system/")
    return path.removesuffix(".http")


def _routed(routes: list, prefix: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for r in routes:
        path = prefix + getattr(r, "path", "")
        methods = getattr(r, "methods", None)
        if methods is None and hasattr(r, "routes"):  # a Mount
            found |= _routed(r.routes, path)
            continue
        for method in set(methods or ()) - {"HEAD"}:
            found.add((method.lower(), path))
    return found


def test_every_routed_api_path_is_documented(app: Starlette) -> None:  # noqa: F811
    documented = {
        (method, _canonical(path))
        for path, ops in openapi_document("test")["paths"].items()
        for method in ops
    }
    routed = {
        (method, path)
        for method, path in _routed(app.routes)
        # The console (/ui) and /docs are HTML pages for people, not the API.
        if path.startswith(("/api/", "/gw/", "/healthz", "/metrics"))
    }
    missing = sorted((m, p) for m, p in routed if (m, _canonical(p)) not in documented)
    assert not missing, f"routed but not in the OpenAPI document: {missing}"
    # Everything the issue names is there.
    paths = {_canonical(p) for _, p in routed}
    for needle in (
        "/triggers",
        "/rules",
        "/routes",
        "/limits",
        "/activations/stream",
        "/invokeConfig",
        "/deadletters",
        "/redrive",
    ):
        assert any(p.endswith(needle) or needle + "/" in p for p in paths), needle
    assert len(routed) > 60


def test_invoke_documents_trace_headers(app: Starlette) -> None:  # noqa: F811
    doc = openapi_document("test")
    for path in (
        "/api/v1/namespaces/{ns}/actions/{fn}",
        "/api/v1/web/{ns}/{path}",
        "/gw/{ns}/{path}",
    ):
        op = doc["paths"][path]["post"]
        headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
        assert {"traceparent", "tracestate", "X-Request-Id"} <= headers, path
    assert doc["paths"]["/gw/{ns}/{path}"]["get"]["security"] == []
