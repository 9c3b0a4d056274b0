"""A real server judges a route's IP rules by the connection's peer: an
X-Forwarded-For header counts only from WISP_TRUSTED_PROXIES, never because the
client connected from 127.0.0.1 (uvicorn's own proxy-header rewriting is off)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import LiveServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path) as live:
        yield live


def get(server: LiveServer, path: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_forwarded_for_from_localhost_does_not_pass_an_ip_rule(server: LiveServer) -> None:
    server.deploy("echo", "def main(args):\n    return {}\n")
    route = {
        "basePath": "/shop",
        "path": "/items/{id}",
        "method": "GET",
        "function": "echo",
        "ip": {"allow": ["203.0.113.0/24"]},
    }
    status, body = server.call("PUT", "/api/v1/namespaces/_/routes", route)
    assert status == 200, body
    spoofed = {"X-Forwarded-For": "203.0.113.5"}
    assert get(server, "/gw/guest/shop/items/1", spoofed) == 403
    # The rule itself works: the peer's own address passes once it is allowed.
    route["ip"] = {"allow": ["127.0.0.1/32"]}
    status, body = server.call("PUT", "/api/v1/namespaces/_/routes?overwrite=true", route)
    assert status == 200, body
    assert get(server, "/gw/guest/shop/items/1", {}) in (200, 204)
