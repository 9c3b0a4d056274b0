"""Console requests in-process (FakeInvoker): sessions, CSRF, origins, bad input."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import app, platform, settings, store, store_kind  # noqa: F401
from wisp.namespaces import create_namespace
from wisp.store.base import Store

BASE = "https://wisp.test"  # the session cookie is Secure


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
async def browser(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    form = await client.get("/ui/login")
    return await client.post("/ui/login", data={"key": key, "csrf": csrf(form.text)})


@pytest.fixture
def key(store: Store) -> str:  # noqa: F811
    _, auth = create_namespace(store, "console")
    return auth


async def test_pages_need_a_session(browser: httpx.AsyncClient) -> None:
    for path in ("/ui/", "/ui/functions", "/ui/activations", "/ui/activations/" + "a" * 32):
        response = await browser.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/ui/login"


async def test_sign_in_sets_a_signed_session_without_the_key(
    browser: httpx.AsyncClient, key: str
) -> None:
    response = await sign_in(browser, key)
    assert response.status_code == 303 and response.headers["location"] == "/ui/functions"
    cookie = response.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/ui"):
        assert flag.lower() in cookie.lower()
    assert key.split(":")[1] not in cookie
    page = await browser.get("/ui/functions")
    assert page.status_code == 200 and "console" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


async def test_a_tampered_cookie_is_no_session(browser: httpx.AsyncClient, key: str) -> None:
    await sign_in(browser, key)
    value = browser.cookies["wisp_session"]
    payload, _, mac = value.rpartition(".")
    browser.cookies.set("wisp_session", payload + "." + "0" * len(mac), domain="wisp.test")
    response = await browser.get("/ui/functions")
    assert response.status_code == 303


async def test_a_rotated_key_ends_the_session(
    browser: httpx.AsyncClient,
    key: str,
    store: Store,  # noqa: F811
) -> None:
    await sign_in(browser, key)
    assert (await browser.get("/ui/functions")).status_code == 200
    ns = store.get_namespace("console")
    assert ns is not None
    ns.key_hash = "0" * 64
    store._namespaces["console"] = ns  # type: ignore[attr-defined]
    assert (await browser.get("/ui/functions")).status_code == 303


async def test_the_sign_in_form_needs_its_csrf_token(browser: httpx.AsyncClient, key: str) -> None:
    await browser.get("/ui/login")
    response = await browser.post("/ui/login", data={"key": key, "csrf": "forged"})
    assert response.status_code == 403
    assert "wisp_session" not in browser.cookies


async def test_posts_need_the_session_csrf_token_and_our_origin(
    browser: httpx.AsyncClient, key: str
) -> None:
    await sign_in(browser, key)
    response = await browser.post("/ui/logout", data={"csrf": "forged"})
    assert response.status_code == 403 and "CSRF" in response.text
    token = csrf((await browser.get("/ui/functions")).text)
    evil = await browser.post(
        "/ui/logout", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert evil.status_code == 403 and "Cross-origin" in evil.text
    ok = await browser.post("/ui/logout", data={"csrf": token}, headers={"Origin": BASE})
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/login"


async def test_bad_input_is_a_4xx_page(browser: httpx.AsyncClient, key: str) -> None:
    await sign_in(browser, key)
    window = await browser.get("/ui/functions?window=1y")
    assert window.status_code == 400 and "window must be one of 1h, 6h, 24h, 7d" in window.text
    status = await browser.get("/ui/activations?status=maybe")
    assert status.status_code == 400
    missing = await browser.get("/ui/functions/nope")
    assert missing.status_code == 404 and "does not exist" in missing.text
    client = httpx.AsyncClient  # the REST API, with the same key, creates a function
    uuid, _, secret = key.partition(":")
    transport = browser._transport
    async with client(transport=transport, base_url=BASE, auth=(uuid, secret)) as api:
        body = {"exec": {"kind": "python:default", "code": "def main(a):\n  return a\n"}}
        assert (await api.put("/api/v1/namespaces/_/actions/fn", json=body)).status_code == 200
    token = csrf((await browser.get("/ui/functions/fn")).text)
    bad = await browser.post("/ui/functions/fn/invoke", data={"csrf": token, "params": "{nope"})
    assert bad.status_code == 400 and "Parameters are not JSON" in bad.text
    listy = await browser.post("/ui/functions/fn/invoke", data={"csrf": token, "params": "[1]"})
    assert listy.status_code == 400 and "must be a JSON object" in listy.text
    good = await browser.post("/ui/functions/fn/invoke", data={"csrf": token, "params": '{"a": 1}'})
    assert good.status_code == 303
    record = await browser.get(good.headers["location"])
    assert record.status_code == 200 and "&#34;a&#34;: 1" in record.text


async def test_non_ascii_cookies_and_tokens_are_refused_not_a_500(
    browser: httpx.AsyncClient, key: str
) -> None:
    # Header bytes are read as latin-1: UTF-8 'é' arrives as a non-ASCII str.
    forged = "wisp_session=é.é;wisp_login=ü".encode()
    page = await browser.get("/ui/functions", headers={"Cookie": forged})
    assert page.status_code == 303 and page.headers["location"] == "/ui/login"
    signed_in = await browser.post(
        "/ui/login", data={"key": key, "csrf": "ü"}, headers={"Cookie": forged}
    )
    assert signed_in.status_code == 403
    await sign_in(browser, key)
    value = browser.cookies["wisp_session"]
    browser.cookies.clear()
    payload, _, mac = value.rpartition(".")
    tampered = f"wisp_session={payload}.é{mac[1:]}".encode()
    assert (await browser.get("/ui/functions", headers={"Cookie": tampered})).status_code == 303
    session = {"Cookie": f"wisp_session={value}"}
    assert (await browser.get("/ui/functions", headers=session)).status_code == 200
    for token in ("é" * 32, "\u2603"):
        response = await browser.post("/ui/logout", data={"csrf": token}, headers=session)
        assert response.status_code == 403 and "CSRF" in response.text


@pytest.mark.parametrize("path", ["/", "/ui"])
async def test_the_root_and_ui_lead_to_the_console(
    browser: httpx.AsyncClient,
    path: str,
) -> None:
    response = await browser.get(path)
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/"  # a path: never built from the Host header
    assert (await browser.head(path)).status_code == 307
    followed = await browser.get(path, follow_redirects=True)
    assert followed.url.path == "/ui/login"  # the console, asking for a key
    assert (await browser.post(path)).status_code in (404, 405)  # only reads are redirected
    assert (await browser.get("/nothing-here")).status_code == 404


async def test_the_editor_form_refuses_bad_input_and_keeps_it(
    browser: httpx.AsyncClient, key: str, store: Store  # noqa: F811
) -> None:
    await sign_in(browser, key)
    page = await browser.get("/ui/new")
    assert page.status_code == 200 and 'src="/ui/static/editor/ace.js"' in page.text
    token = csrf(page.text)
    forged = await browser.post("/ui/new", data={"csrf": "x", "name": "f", "code": "x"})
    assert forged.status_code == 403
    cases = {
        ("", "def main(a): return {}"): "Name the function",
        ("a/b/c", "def main(a): return {}"): "NAME or PACKAGE/NAME",
        ("f", "   "): "The code is empty.",
        ("bad name!", "def main(a): return {}"): "bad name!",
        ("f", "def main(a): return {}", "cobol:1"): "cobol:1",
    }
    for fields, message in cases.items():
        name, code, *kind = fields
        data = {"csrf": token, "name": name, "code": code, "kind": kind[0] if kind else ""}
        response = await browser.post("/ui/new", data=data)
        assert response.status_code == 400, (fields, response.text)
        assert message in response.text
        assert ">" + code.replace("'", "&#39;") + "</textarea>" in response.text  # kept
    assert store.list_actions("console", None, 10, 0) == []  # nothing was deployed
    made = await browser.post(
        "/ui/new", data={"csrf": token, "name": "f", "code": "def main(a):\n    return {}\n"}
    )
    assert made.status_code == 303 and made.headers["location"] == "/ui/functions/f"
    again = await browser.post(
        "/ui/new", data={"csrf": token, "name": "f", "code": "def main(a):\n    return {}\n"}
    )
    assert again.status_code == 409 and "/ui/edit/f" in again.text
