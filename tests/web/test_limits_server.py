"""Body limits and large bodies end to end: a real `wisp server` with raised limits
(WISP_PAYLOAD_MAX, WISP_RESULT_MAX), real sandboxes, raw sockets where a client
library would hide what happens (a body that is never finished)."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.slow

LIMIT = 6 * 1024 * 1024
ROUTE_LIMIT = 100_000
ACTIONS = "/api/v1/namespaces/_/actions"
ECHO_BINARY = """
def main(args):
    return {"headers": {"content-type": args["__ow_headers"]["content-type"]},
            "body": args["__ow_body"]}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"WISP_PAYLOAD_MAX": str(LIMIT), "WISP_RESULT_MAX": str(16 * 1024 * 1024)}
    with LiveServer(tmp_path_factory.mktemp("limits"), env=env) as live:
        with live.client() as client:
            action = {
                "exec": {"kind": "python:default", "code": ECHO_BINARY},
                "annotations": [
                    {"key": "web-export", "value": True},
                    {"key": "raw-http", "value": True},
                ],
            }
            assert client.put(f"{ACTIONS}/echo", json=action).status_code == 200
            route = {"basePath": "/up", "method": "POST", "function": "echo"}
            for doc in ({"path": "/small", "maxBody": ROUTE_LIMIT}, {"path": "/big"}):
                r = client.put("/api/v1/namespaces/_/routes", json={**route, **doc})
                assert r.status_code == 200, r.text
        yield live


def raw_exchange(server: LiveServer, head: str, body: Iterator[bytes]) -> tuple[int, bytes]:
    """Send a request head and body parts (whatever the head declares), then read the
    answer: (status, body). The body need not be finished for an answer to come."""
    where = urlsplit(server.url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(head.encode())
        for part in body:
            sock.sendall(part)
        reader = sock.makefile("rb")
        status = int(reader.readline().split()[1])
        length = 0
        while (line := reader.readline().strip()) != b"":
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, reader.read(length)


def head(path: str, headers: dict[str, str]) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: wisp.test", *(f"{k}: {v}" for k, v in headers.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


def chunked(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """``total`` bytes in chunks, and no last chunk: the body never ends."""
    sent = 0
    while sent < total:
        yield f"{size:x}\r\n".encode() + b"\0" * size + b"\r\n"
        sent += size


def basic(server: LiveServer) -> str:
    return "Basic " + base64.b64encode(":".join(server.auth).encode()).decode()


PATHS = {
    "web": ("/api/v1/web/guest/default/echo", LIMIT),
    "gateway": ("/gw/guest/up/small", ROUTE_LIMIT),
    "gateway-server-limit": ("/gw/guest/up/big", LIMIT),
    "invoke": (f"{ACTIONS}/echo?blocking=true", LIMIT),
}


@pytest.mark.parametrize("where", list(PATHS))
def test_declared_oversize_is_413_before_the_body_is_sent(server: LiveServer, where: str) -> None:
    path, limit = PATHS[where]
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(limit + 1)}
    if where == "invoke":
        headers["Authorization"] = basic(server)
    status, body = raw_exchange(server, head(path, headers), iter([]))  # no body at all
    assert status == 413, body
    error = json.loads(body)
    assert error["code"] == "payload_too_large"
    assert f"over the limit of {limit} bytes" in error["error"]


@pytest.mark.parametrize("where", list(PATHS))
def test_chunked_oversize_is_413_without_waiting_for_the_end(
    server: LiveServer, where: str
) -> None:
    path, limit = PATHS[where]
    headers = {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"}
    if where == "invoke":
        headers["Authorization"] = basic(server)
    # Just past the limit, and the body is never finished: only a server that counts
    # as it reads (rather than reading to the end first) answers at all.
    status, body = raw_exchange(server, head(path, headers), chunked(limit + 64 * 1024))
    assert status == 413, body
    assert f"over the limit of {limit} bytes" in json.loads(body)["error"]


@pytest.mark.parametrize("path", ["/api/v1/web/guest/default/echo", "/gw/guest/up/big"])
def test_several_megabytes_round_trip_byte_exact(server: LiveServer, path: str) -> None:
    payload = os.urandom(5 * 1024 * 1024 + 1)
    with server.client() as client:
        r = client.post(
            path, content=payload, headers={"content-type": "application/octet-stream"}, auth=None
        )
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-length"] == str(len(payload))
    assert r.content == payload
