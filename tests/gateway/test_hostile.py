"""A hostile tenant against a real server's gateway: JWKS as an SSRF and file probe,
unknown key ids as a fetch amplifier, Host headers as a cache filler, Basic-auth
brute force. Only 127.0.0.1 is ever connected to."""

from __future__ import annotations

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
