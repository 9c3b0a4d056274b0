"""JWT (RS256/ES256 against a JWKS the tests generate) and IP allow/deny with proxies."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from tests.api.conftest import PAYLOAD_MAX, SYNC_LIMIT, FakeInvoker, Tenant
from tests.gateway.conftest import client_from, make_route
from tests.gateway.jwks_server import AUDIENCE, ISSUER, JwksServer, Keys
from wisp.config import Limits, Settings
from wisp.gateway.ipfilter import IpRules, parse_networks
from wisp.gateway.ratelimit import TokenBucket


@pytest.fixture
def settings() -> Settings:
    # The JWKS is served on loopback over plain http: the operator's opt-in.
    return Settings(
        sync_limit=SYNC_LIMIT,
        limits=Limits(payload_max=PAYLOAD_MAX),
        jwks_allow_http_loopback="on",
    )


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def jwks(keys: Keys) -> Iterator[JwksServer]:
    with JwksServer({"/jwks.json": keys.document}) as server:
        yield server


@pytest.fixture
async def url(guest: Tenant, echo: str, jwks: JwksServer) -> str:
    policy = {
        "type": "jwt",
        "jwks": jwks.url("/jwks.json"),
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "scopes": ["items:read"],
        "claims": {"tenant": "acme"},
    }
    await make_route(guest, responseType="json", policy=policy)
    return f"/gw/{guest.name}/shop/items/1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


GOOD = {"scope": "items:read other", "tenant": "acme"}


async def test_valid_tokens_pass_claims(keys: Keys, url: str, public: httpx.AsyncClient) -> None:
    for alg in ("RS256", "ES256"):
        r = await public.get(url, headers=bearer(keys.token(alg, **GOOD)))
        assert r.status_code == 200, r.text
        args = r.json()
        assert args["__ow_user"] == "user-1" and args["__ow_claims"]["tenant"] == "acme"


async def test_bad_tokens_are_refused(
    keys: Keys, url: str, public: httpx.AsyncClient, invoker: FakeInvoker, jwks: JwksServer
) -> None:
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, **GOOD},
        None,
        algorithm="none",
    )
    hs = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, **GOOD},
        "k" * 32,
        algorithm="HS256",
        headers={"kid": "r1"},
    )
    cases = {
        "no token": {},
        "not a jwt": bearer("garbage"),
        "alg none": bearer(unsigned),
        "alg HS256": bearer(hs),
        "bad signature": bearer(keys.token(key=keys.stranger, **GOOD)),
        "tampered": bearer(keys.token(**GOOD)[:-4] + "AAAA"),
        "wrong issuer": bearer(keys.token(iss="https://evil.example", **GOOD)),
        "wrong audience": bearer(keys.token(aud="someone-else", **GOOD)),
        "expired": bearer(keys.token(exp=int(time.time()) - 3600, **GOOD)),
        "unknown kid": bearer(keys.token(kid="zz", **GOOD)),
    }
    for label, headers in cases.items():
        r = await public.get(url, headers=headers)
        assert r.status_code == 401, (label, r.text)
        assert "Traceback" not in r.text
    assert jwks.hits["/jwks.json"] == 1  # the unknown kid did not refetch within the minute
    r = await public.get(url, headers=bearer(keys.token(scope="other", tenant="acme")))
    assert r.status_code == 403 and "items:read" in r.json()["error"]
    r = await public.get(url, headers=bearer(keys.token(scope="items:read", tenant="globex")))
    assert r.status_code == 403 and "tenant" in r.json()["error"]
    assert invoker.calls == []


async def test_ip_allow_and_deny(guest: Tenant, echo: str, app: Starlette) -> None:
    await make_route(guest, ip={"allow": ["203.0.113.0/24"], "deny": ["203.0.113.66"]})
    url = f"/gw/{guest.name}/shop/items/1"
    for ip, status in (("203.0.113.7", 204), ("203.0.113.66", 403), ("198.51.100.1", 403)):
        async with client_from(app, ip) as client:
            assert (await client.get(url)).status_code == status, ip


async def test_forwarded_for_only_from_trusted_proxies(
    guest: Tenant, echo: str, app: Starlette
) -> None:
    await make_route(guest, ip={"allow": ["203.0.113.0/24"]})
    url = f"/gw/{guest.name}/shop/items/1"
    spoof = {"X-Forwarded-For": "203.0.113.5"}
    # An untrusted client cannot claim an allowed address.
    async with client_from(app, "198.51.100.1") as client:
        assert (await client.get(url, headers=spoof)).status_code == 403


async def test_trusted_proxy_forwarding(guest: Tenant, echo: str, app: Starlette) -> None:
    gateway_settings = app.state.wisp.platform.settings
    assert gateway_settings.trusted_proxies == ""
    from wisp.gateway.ipfilter import client_ip

    class FakeRequest:
        def __init__(self, peer: str, forwarded: str) -> None:
            self.client = type("C", (), {"host": peer})()
            self.headers = {"x-forwarded-for": forwarded}

    trusted = parse_networks(["10.0.0.0/8"], "t")
    got = client_ip(FakeRequest("10.0.0.2", "1.2.3.4, 203.0.113.5, 10.0.0.9"), trusted)  # type: ignore[arg-type]
    assert (
        str(got) == "203.0.113.5"
    )  # right-most untrusted hop; the left part is the client's to forge
    got = client_ip(FakeRequest("198.51.100.1", "203.0.113.5"), trusted)  # type: ignore[arg-type]
    assert str(got) == "198.51.100.1"
    assert not IpRules([], parse_networks(["1.2.3.4"], "d")).permits(got.__class__("1.2.3.4"))


def test_token_bucket_exhausts_and_recovers() -> None:
    bucket = TokenBucket(requests=2, per=10, burst=2)
    assert bucket.take("a", now=0) == 0 and bucket.take("a", now=0) == 0
    assert bucket.take("a", now=0) == 5  # one token comes back every 5 s
    assert bucket.take("b", now=0) == 0  # clients have their own buckets
    assert bucket.take("a", now=4.0) == 1
    assert bucket.take("a", now=10.0) == 0  # recovered
