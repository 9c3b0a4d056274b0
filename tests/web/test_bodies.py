"""Request and response bodies on the web and gateway paths (and the invoke API, which
reads its body the same way): limits and streaming.

Driven at the ASGI level (no HTTP client in between) so a test sees exactly how much
of a body the app pulled before answering, how a response was sent (one message or
pieces), and, with tracemalloc, how much memory a large body cost on the way.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette

from tests.api.conftest import ACTIONS, SYNC_LIMIT, FakeInvoker, Tenant
from tests.gateway.conftest import ROUTES
from tests.web.conftest import WEB, web_action
from wisp.config import Limits, Settings
from wisp.invoker.base import Invocation, Target
from wisp.models import SUCCESS, Activation
from wisp.platform import Platform
from wisp.web.response import PIECE, STREAM_FROM

LIMIT = 6 * 1024 * 1024  # this module's payload limit: room for a several-MB body
CHUNK = 64 * 1024  # what uvicorn hands the app per receive, about


@pytest.fixture
def settings() -> Settings:
    return Settings(sync_limit=SYNC_LIMIT, limits=Limits(payload_max=LIMIT, code_max=64 * 1024))


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    messages: int = 0  # http.response.body messages
    size: int = 0
    digest: Any = field(default_factory=hashlib.sha256)
    first: bytes = b""  # the first body message, for error documents
    pulled: int = 0  # request body bytes the app received


async def call(
    app: Starlette,
    method: str,
    path: str,
    chunks: Iterator[bytes],
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request straight into the ASGI app; the response is hashed, not kept."""
    answer = Answer()
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"wisp.test"), *raw_headers],
        "client": ("203.0.113.7", 40000),
        "server": ("wisp.test", 80),
    }
    pending = iter(chunks)

    async def receive() -> dict[str, Any]:
        chunk = next(pending, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        answer.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        else:
            body = message.get("body", b"")
            if body:
                answer.messages += 1
                answer.first = answer.first or body
            answer.size += len(body)
            answer.digest.update(body)

    await app(scope, receive, send)
    return answer


def pieces_of(data: bytes | memoryview, size: int = CHUNK) -> Iterator[bytes]:
    view = memoryview(data)
    for i in range(0, len(view), size):
        yield bytes(view[i : i + size])


def endless(size: int = CHUNK) -> Iterator[bytes]:
    while True:
        yield b"z" * size


@pytest.fixture
async def web_url(guest: Tenant) -> str:
    r = await guest.client.put(f"{ACTIONS}/echo", json=web_action("raw"))
    assert r.status_code == 200, r.text
    return f"{WEB}/{guest.name}/default/echo"


@pytest.fixture
async def gw_url(guest: Tenant, web_url: str) -> str:
    doc = {"basePath": "/up", "path": "/load", "method": "POST", "function": "echo"}
    r = await guest.client.put(ROUTES, json={**doc, "maxBody": 100_000})
    assert r.status_code == 200, r.text
    r = await guest.client.put(ROUTES, json={**doc, "path": "/big"})  # maxBody: the server's
    assert r.status_code == 200, r.text
    return f"/gw/{guest.name}/up"


@pytest.fixture
def echo_bodies(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The invoker answers with the request's body as the function's ``body``.

    Nothing else keeps it: no activation writer, no list of calls, so what a
    tracemalloc peak sees is the web path's own doing. Returns the body lengths seen.
    """
    seen: list[int] = []

    def submit(target: Target, params: dict[str, Any], **_: Any) -> Invocation:
        http = params["http"]
        seen.append(len(http["body"]))
        content_type = http["headers"].get("content-type", "text/plain")
        result = {"headers": {"content-type": content_type}, "body": http["body"]}
        now = time.time_ns() // 1_000_000
        record = Activation("a" * 32, "ns", "echo", "0.0.1", "ns", now, now, SUCCESS, result)
        done: asyncio.Future[Activation] = asyncio.get_running_loop().create_future()
        done.set_result(record)
        return Invocation(record.activation_id, done)

    monkeypatch.setattr(platform.invoker, "submit", submit)
    return seen


# -- limits ------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "limit"), [("web", LIMIT), ("gw", 100_000)])
async def test_a_declared_oversize_body_is_refused_before_reading_it(
    app: Starlette, web_url: str, gw_url: str, where: str, limit: int, echo_bodies: list[int]
) -> None:
    url = web_url if where == "web" else f"{gw_url}/load"
    headers = {"content-length": str(limit + 1), "content-type": "application/octet-stream"}
    answer = await call(app, "POST", url, endless(), headers)
    assert answer.status == 413
    assert answer.pulled == 0  # not one byte read: a client expecting 100-continue sends none
    assert f"{limit + 1} bytes, over the limit of {limit} bytes".encode() in answer.first
    assert b'"code":"payload_too_large"' in answer.first and echo_bodies == []


@pytest.mark.parametrize(("where", "limit"), [("web", LIMIT), ("gw", 100_000)])
async def test_a_chunked_oversize_body_is_refused_as_soon_as_it_crosses_the_limit(
    app: Starlette, web_url: str, gw_url: str, where: str, limit: int, echo_bodies: list[int]
) -> None:
    url = web_url if where == "web" else f"{gw_url}/load"
    # No Content-Length and a body that never ends: only counting can stop it.
    answer = await call(app, "POST", url, endless(), {"content-type": "text/plain"})
    assert answer.status == 413 and echo_bodies == []
    assert limit < answer.pulled <= limit + CHUNK
    assert f"over the limit of {limit} bytes".encode() in answer.first


async def test_the_route_limit_is_its_own(
    app: Starlette, gw_url: str, echo_bodies: list[int]
) -> None:
    # /load allows 100,000 bytes; /big the server's limit.
    body = os.urandom(200_000)
    kind = {"content-type": "application/octet-stream"}
    assert (await call(app, "POST", f"{gw_url}/load", pieces_of(body), kind)).status == 413
    answer = await call(app, "POST", f"{gw_url}/big", pieces_of(body), kind)
    assert answer.status == 200 and answer.digest.digest() == hashlib.sha256(body).digest()


@pytest.mark.parametrize("value", ["12x", "-1", "1e3"])
async def test_a_malformed_content_length_is_400(
    app: Starlette, web_url: str, value: str, echo_bodies: list[int]
) -> None:
    answer = await call(app, "POST", web_url, iter([b"x"]), {"content-length": value})
    assert answer.status == 400 and b"Content-Length" in answer.first and echo_bodies == []


async def test_the_invoke_api_enforces_the_limit_the_same_way(
    app: Starlette, guest: Tenant, web_url: str, invoker: FakeInvoker
) -> None:
    url = f"{ACTIONS}/echo?blocking=true"
    auth = {"authorization": "Basic " + base64.b64encode(guest.auth.encode()).decode()}
    declared = {**auth, "content-length": str(LIMIT + 1)}
    answer = await call(app, "POST", url, endless(), declared)
    assert answer.status == 413 and answer.pulled == 0
    assert json.loads(answer.first) == {
        "code": "payload_too_large",
        "error": f"the request body is {LIMIT + 1} bytes, over the limit of {LIMIT} bytes",
    }
    answer = await call(app, "POST", url, endless(), auth)  # chunked: counted as it comes
    assert answer.status == 413 and LIMIT < answer.pulled <= LIMIT + CHUNK
    assert json.loads(answer.first)["code"] == "payload_too_large"
    answer = await call(app, "POST", url, iter([b"{}"]), {**auth, "content-length": "12x"})
    assert answer.status == 400 and b"Content-Length" in answer.first
    assert invoker.calls == []
    # A body in many pieces, right up to the limit, arrives whole.
    padding = "p" * (LIMIT - 100)
    body = json.dumps({"name": "Ada", "padding": padding}).encode()
    answer = await call(app, "POST", url, pieces_of(body), auth)
    assert answer.status == 200 and len(invoker.calls) == 1
    assert invoker.calls[0].params["padding"] == padding


# -- large bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["web", "gw"])
async def test_a_large_binary_body_round_trips_byte_exact_in_pieces(
    app: Starlette, web_url: str, gw_url: str, where: str, echo_bodies: list[int]
) -> None:
    body = os.urandom(5 * 1024 * 1024 + 7)  # not a multiple of 3: base64 padding at the end
    url = web_url if where == "web" else f"{gw_url}/big"
    headers = {"content-type": "application/octet-stream"}
    answer = await call(app, "POST", url, pieces_of(body), headers)
    assert answer.status == 200, answer.first[:200]
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-length"] == str(len(body)) == str(answer.size)
    assert answer.digest.digest() == hashlib.sha256(body).digest()
    assert echo_bodies == [(len(body) + 2) // 3 * 4]  # the function saw it as base64
    # Sent in pieces, each decoded as it went out, not as one 5 MB message.
    assert answer.messages == -(-echo_bodies[0] // PIECE)


async def test_large_text_is_sent_in_pieces_too(
    app: Starlette, web_url: str, echo_bodies: list[int]
) -> None:
    body = b"0123456789abcdef" * (STREAM_FROM // 8)
    answer = await call(app, "POST", web_url, pieces_of(body), {"content-type": "text/csv"})
    assert answer.status == 200 and answer.headers["content-length"] == str(len(body))
    assert answer.digest.digest() == hashlib.sha256(body).digest() and answer.messages > 1


async def test_a_bad_base64_body_is_still_a_clean_502_when_large(
    app: Starlette, guest: Tenant, platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    await guest.client.put(f"{ACTIONS}/echo", json=web_action())
    url = f"{WEB}/{guest.name}/default/echo"
    good = "QUJD" * (STREAM_FROM // 2)
    for bad in (
        good + "!",  # not base64
        good[:100] + "QQ==" + good[104:],  # padding inside a piece
        good[: PIECE - 4] + "QQ==" + good[PIECE:],  # padding ending a piece, not the body
        good + "Q",  # cut short
    ):
        payload = f'{{"headers": {{"content-type": "image/png"}}, "body": "{bad}"}}'.encode()
        answer = await call(
            app, "POST", url, pieces_of(payload), {"content-type": "application/json"}
        )
        assert answer.status == 502, bad[-8:]
        assert b"must be base64" in answer.first and answer.messages == 1


async def test_a_large_body_is_not_held_twice(
    app: Starlette, web_url: str, echo_bodies: list[int]
) -> None:
    """Peak memory while a several-MB binary body goes through the web path.

    As base64 the body is 4/3 of its size, and the function protocol needs it as
    text: the least a server can hold is the bytes and then their base64 text (2.3x)
    or, while converting, base64 bytes and text (2.7x). Reading into a list of chunks,
    joining them, and decoding the answer whole came to 4.7x.
    """
    size = 4 * 1024 * 1024
    body = os.urandom(size)
    headers = {"content-type": "application/octet-stream"}
    await call(app, "POST", web_url, pieces_of(body[:1000]), headers)  # caches warm
    tracemalloc.start()
    try:
        answer = await call(app, "POST", web_url, pieces_of(body), headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 200 and answer.digest.digest() == hashlib.sha256(body).digest()
    assert peak < 3 * size, f"peak {peak / size:.2f}x the body"
