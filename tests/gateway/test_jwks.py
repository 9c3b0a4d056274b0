"""JWKS URLs a route may use, the fetch (pinned to the checked address), and its rate.

Nothing here connects anywhere but 127.0.0.1: refused addresses are refused before
any connection, which the app-level tests check by failing any HTTP send.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Tenant
from tests.gateway.conftest import ROUTES, make_route
from tests.gateway.jwks_server import AUDIENCE, ISSUER, JwksServer, Keys, self_signed
from wisp.errors import Unauthorized
from wisp.gateway.ipfilter import Address
from wisp.gateway.jwks import JwksLoader, JwksRules, check_url, fetch_document
from wisp.models import GatewayRoute
from wisp.store.base import Store

LOOPBACK = JwksRules(allow_http_loopback=True)
STRICT = JwksRules()

# (URL, a word the refusal must contain); refused even with loopback allowed.
REFUSED = [
    ("file:///etc/passwd", "https://"),
    ("/etc/passwd", "https://"),
    ("etc/passwd", "https://"),
    ("ftp://example.com/jwks", "https://"),
    ("http://203.0.113.5/jwks.json", "loopback"),
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("https://10.1.2.3/jwks.json", "10.1.2.3"),
    ("https://192.168.0.10:8443/jwks.json", "192.168.0.10"),
    ("https://100.64.0.1/jwks.json", "100.64.0.1"),
    ("https://[::ffff:10.0.0.1]/jwks.json", "10.0.0.1"),
    ("https://[64:ff9b::a00:1]/jwks.json", "10.0.0.1"),  # NAT64
    ("https://[2002:a9fe:a9fe::]/jwks.json", "169.254.169.254"),  # 6to4
    ("https://[::a00:1]/jwks.json", "10.0.0.1"),  # IPv4-compatible
    ("https://[fe80::1]/jwks.json", "fe80::1"),
    ("https://[fd00::1]/jwks.json", "fd00::1"),
    ("https://0.0.0.0/jwks.json", "0.0.0.0"),
    ("https://224.0.0.1/jwks.json", "224.0.0.1"),
    ("https://user:secret@203.0.113.5/jwks.json", "credentials"),
    ("https://:443/jwks.json", "host"),
    ("https://203.0.113.5:99999/jwks.json", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "word"), REFUSED)
def test_refused_urls(url: str, word: str | None) -> None:
    with pytest.raises(ValueError) as caught:
        check_url(url, LOOPBACK)
    assert word is None or word in str(caught.value)


def test_loopback_needs_the_operator_setting() -> None:
    for url in ("http://127.0.0.1:8080/jwks.json", "https://127.0.0.1/k", "https://[::1]/k"):
        with pytest.raises(ValueError):
            check_url(url, STRICT)
        check_url(url, LOOPBACK)
    with pytest.raises(ValueError, match="localhost is"):  # a name resolving to loopback
        check_url("https://localhost/jwks.json", STRICT)
    check_url("https://93.184.216.34/jwks.json", STRICT)  # a public address is fine (no fetch)


def test_allowed_networks_open_a_private_range_to_https_only() -> None:
    rules = JwksRules(allow_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    check_url("https://10.20.3.4/jwks.json", rules)
    with pytest.raises(ValueError):
        check_url("https://10.21.0.1/jwks.json", rules)
    with pytest.raises(ValueError):
        check_url("http://10.20.3.4/jwks.json", JwksRules(True, rules.allow_networks))


def resolver(*answers: str):  # type: ignore[no-untyped-def]
    """A DNS stand-in: every name resolves to ``answers``."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[Address]:
        asked.append(host)
        return [ipaddress.ip_address(a) for a in answers]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


async def test_fetch_connects_to_the_checked_address_and_checks_every_answer() -> None:
    with JwksServer({"/jwks.json": b'{"keys": []}'}) as server:
        url = server.url("/jwks.json", host="jwks.test")  # a name no real DNS knows
        document = await fetch_document(url, LOOPBACK, resolver("127.0.0.1"))
        assert document == {"keys": []}
        assert server.hosts == [f"jwks.test:{server.port}"]
        # One bad answer among good ones refuses the fetch (a rebinding name).
        for answers in (("127.0.0.1", "10.0.0.1"), ("169.254.169.254",), ()):
            with pytest.raises(ValueError):
                await fetch_document(url, LOOPBACK, resolver(*answers))
        assert server.hits["/jwks.json"] == 1
        with pytest.raises(ValueError):  # allowed at creation, not any more
            await fetch_document(url, STRICT, resolver("127.0.0.1"))
        assert server.hits["/jwks.json"] == 1


async def test_fetch_refuses_redirects_errors_and_huge_documents() -> None:
    documents = {"/big": b'{"keys": ["' + b"x" * 600_000 + b'"]}'}
    with JwksServer(documents) as server:
        for path in ("/missing", "/big"):
            with pytest.raises(ValueError):
                await fetch_document(server.url(path), LOOPBACK)


async def test_https_verifies_the_name_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    tls, ca = self_signed(tmp_path, "jwks.test")
    with JwksServer({"/jwks.json": b'{"keys": []}'}, tls) as server:
        url = server.url("/jwks.json", host="jwks.test", scheme="https")
        rules = JwksRules(allow_http_loopback=True, ca_file=str(ca))
        assert await fetch_document(url, rules, resolver("127.0.0.1")) == {"keys": []}
        # The certificate is checked: untrusted without the CA, and for the name.
        with pytest.raises(httpx.ConnectError):
            await fetch_document(url, LOOPBACK, resolver("127.0.0.1"))
        other = server.url("/jwks.json", host="other.test", scheme="https")
        with pytest.raises(httpx.ConnectError):
            await fetch_document(other, rules, resolver("127.0.0.1"))
        assert server.hits["/jwks.json"] == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_unknown_key_ids_refetch_at_most_once_a_minute() -> None:
    keys = Keys()
    clock = Clock()
    with JwksServer({"/jwks.json": keys.document}) as server:
        loader = JwksLoader(LOOPBACK, clock=clock)
        url = server.url("/jwks.json")
        first = await loader.keys(url)
        assert [k.key_id for k in first.keys] == ["r1", "e1"]
        for _ in range(50):  # a storm of tokens naming keys the set lacks
            await loader.keys(url, refresh=True)
        assert server.hits["/jwks.json"] == 1
        clock.now += 59
        await loader.keys(url, refresh=True)
        assert server.hits["/jwks.json"] == 1
        clock.now += 1.5
        await loader.keys(url, refresh=True)
        await loader.keys(url, refresh=True)
        assert server.hits["/jwks.json"] == 2
        # A failing endpoint is not hammered either, and the last good set is kept.
        server.documents.clear()
        clock.now += 400  # past the TTL
        for _ in range(10):
            assert (await loader.keys(url)).keys
        assert server.hits["/jwks.json"] == 3


async def test_a_failed_first_load_is_generic_and_not_retried_within_the_minute() -> None:
    clock = Clock()
    with JwksServer({}) as server:
        loader = JwksLoader(LOOPBACK, clock=clock)
        for _ in range(5):
            with pytest.raises(Unauthorized) as caught:
                await loader.keys(server.url("/jwks.json"))
            assert caught.value.message == "the route's JWKS could not be loaded"
        assert server.hits["/jwks.json"] == 1


# -- through the app: route creation and requests -----------------------------------

JWT_POLICY = {"type": "jwt", "issuer": ISSUER, "audience": AUDIENCE}


async def test_route_creation_refuses_bad_jwks_with_400(guest: Tenant, echo: str) -> None:
    for url, _ in [*REFUSED, ("http://127.0.0.1:9/jwks.json", None)]:
        body = {"path": "/p", "function": "echo", "policy": {**JWT_POLICY, "jwks": url}}
        r = await guest.client.put(ROUTES, json=body)
        assert r.status_code == 400, (url, r.text)
        assert r.json()["error"].startswith("policy.jwks"), r.text
    assert (await guest.client.get(ROUTES)).json() == []


async def test_stored_bad_jwks_are_refused_at_fetch_time_without_a_word(
    guest: Tenant,
    echo: str,
    store: Store,
    public: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Routes stored before the check existed (or by another replica's older version).
    sent: list[object] = []

    class NoHttp:
        """Stands for httpx in the loader: any client it makes is a test failure."""

        @staticmethod
        def AsyncClient(**kwargs: object) -> None:
            sent.append(kwargs)
            raise AssertionError("a refused JWKS URL was fetched")

    monkeypatch.setattr("wisp.gateway.jwks.httpx", NoHttp)
    await make_route(guest, path="/ok/{id}")
    template = store.list_routes(guest.name)[0]
    token = Keys().token()
    urls = [url for url, _ in REFUSED[:9]] + ["https://93.184.216.34/jwks.json"]
    for i, url in enumerate(urls):
        config = {**template.config, "policy": {**JWT_POLICY, "jwks": url}}
        route = GatewayRoute(guest.name, "/bad", f"/r{i}", "GET", "echo", "", config)
        store.put_route(route)
    for i, url in enumerate(urls):
        headers = {"Authorization": f"Bearer {token}"}
        r = await public.get(f"/gw/{guest.name}/bad/r{i}", headers=headers)
        assert r.status_code == 401, (url, r.text)
        assert r.json()["error"] == "the route's JWKS could not be loaded", (url, r.text)
    # Only the last, a public address, got as far as making a client (the stand-in's
    # refusal is as generic to the caller as any other failure).
    assert len(sent) == 1
