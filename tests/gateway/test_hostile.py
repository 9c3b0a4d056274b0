"""A hostile tenant against a real server's gateway: JWKS as an SSRF and file probe,
unknown key ids as a fetch amplifier, Host headers as a cache filler, Basic-auth
brute force. Only 127.0.0.1 is ever connected to."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.jwks_server import AUDIENCE, ISSUER, JwksServer, Keys
from tests.live import LiveServer

ROUTES = "/api/v1/namespaces/_/routes"
ECHO = "def main(args):\n    return {'user': args.get('__ow_user')}\n"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def jwks(keys: Keys) -> Iterator[JwksServer]:
    with JwksServer({"/jwks.json": keys.document}) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"WISP_JWKS_ALLOW_HTTP_LOOPBACK": "on"}  # the loopback JWKS server below
    with LiveServer(tmp_path_factory.mktemp("hostile"), env=env) as live:
        live.deploy("echo", ECHO)
        yield live


@pytest.fixture
def public(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def jwt_route(path: str, jwks: str) -> dict[str, object]:
    policy = {"type": "jwt", "jwks": jwks, "issuer": ISSUER, "audience": AUDIENCE}
    return {
        "basePath": "/jwt",
        "path": path,
        "function": "echo",
        "policy": policy,
        "responseType": "json",
    }


def test_jwks_urls_that_probe_files_or_internal_networks_are_400(
    server: LiveServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"keys": []}')
    for url in (
        f"file://{secret}",
        str(secret),
        "http://203.0.113.5/jwks.json",
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/jwks.json",
        "https://[fd00::1]/jwks.json",
    ):
        status, body = server.call("PUT", ROUTES, jwt_route("/probe", url))
        assert status == 400, (url, body)
        assert body["error"].startswith("policy.jwks:"), body
        assert "keys" not in body["error"]
    status, listed = server.call("GET", ROUTES)
    assert status == 200 and [r for r in listed if r["basePath"] == "/jwt"] == []


def test_unknown_key_ids_do_not_refetch_the_jwks(
    server: LiveServer, public: httpx.Client, jwks: JwksServer, keys: Keys
) -> None:
    status, body = server.call("PUT", ROUTES, jwt_route("/storm", jwks.url("/jwks.json")))
    assert status == 200, body
    good = public.get("/gw/guest/jwt/storm", headers={"Authorization": f"Bearer {keys.token()}"})
    assert good.status_code == 200, good.text
    assert good.json() == {"user": "user-1"}
    assert jwks.hits["/jwks.json"] == 1
    for i in range(100):
        token = keys.token(kid=f"rotated-{i}")
        r = public.get("/gw/guest/jwt/storm", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.text
    assert jwks.hits["/jwks.json"] == 1  # at most one fetch a minute, whatever the kids


def test_basic_auth_brute_force_hits_the_rate_limit(
    server: LiveServer, public: httpx.Client
) -> None:
    policy = {"type": "basic", "users": {"ada": "correct horse"}}
    limited = {
        "basePath": "/basic",
        "path": "/limited",
        "function": "echo",
        "responseType": "json",
        "policy": policy,
        "rateLimit": {"requests": 5, "per": 60},
    }
    status, body = server.call("PUT", ROUTES, limited)
    assert status == 200, body
    answers = [
        public.get("/gw/guest/basic/limited", auth=("ada", f"guess-{i}")).status_code
        for i in range(8)
    ]
    assert answers == [401] * 5 + [429] * 3  # each failure took a token
    right = public.get("/gw/guest/basic/limited", auth=("ada", "correct horse"))
    assert right.status_code == 429 and int(right.headers["retry-after"]) >= 1
    # Without a rateLimit of its own, a route still limits failed attempts per address.
    status, body = server.call("PUT", ROUTES, {**limited, "path": "/open", "rateLimit": None})
    assert status == 200, body
    answers = [
        public.get("/gw/guest/basic/open", auth=("ada", f"guess-{i}")).status_code
        for i in range(12)
    ]
    assert answers == [401] * 10 + [429] * 2
    assert public.get("/gw/guest/basic/open", auth=("ada", "correct horse")).status_code == 429


def test_made_up_host_names_are_cheap_404s(server: LiveServer, public: httpx.Client) -> None:
    route = {"basePath": "/h", "path": "/x", "function": "echo", "responseType": "json"}
    status, body = server.call("PUT", ROUTES, {**route, "host": "api.example.com"})
    assert status == 200, body
    started = time.monotonic()
    for i in range(2_000):
        r = public.get("/h/x", headers={"Host": f"h{i}.example.net"})
        assert r.status_code == 404
    per_request = (time.monotonic() - started) / 2_000
    r = public.get("/h/x", headers={"Host": "api.example.com"})
    assert r.status_code == 200 and r.json() == {"user": None}
    print(f"made-up Host 404: {per_request * 1000:.2f} ms a request")
