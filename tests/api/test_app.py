"""The app as a whole: lifespan, error envelopes for unknown paths, methods and bugs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import ACTIONS, FakeInvoker, Tenant, hello
from wisp.api import create_app
from wisp.platform import Platform


async def test_lifespan_starts_and_stops_platform_and_purges(
    platform: Platform, invoker: FakeInvoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    await platform.stop()
    assert not invoker.started
    purged = asyncio.Event()

    def purge(older_than: int) -> int:
        purged.set()
        return 0

    monkeypatch.setattr(platform.writer, "purge", purge)
    app = create_app(platform, purge_every=0.01)
    async with app.router.lifespan_context(app):
        assert invoker.started
        await asyncio.wait_for(purged.wait(), 2)
    assert not invoker.started
    await platform.start()  # the fixture stops it again


async def test_purge_failures_do_not_stop_the_loop(
    platform: Platform, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    def purge(older_than: int) -> int:
        nonlocal calls
        calls += 1
        raise RuntimeError("database away")

    monkeypatch.setattr(platform.writer, "purge", purge)
    app = create_app(platform, purge_every=0.01)
    await platform.stop()
    async with app.router.lifespan_context(app):
        while calls < 2:
            await asyncio.sleep(0.01)
    await platform.start()
    assert "purging expired activation records failed" in caplog.text


@pytest.mark.parametrize(
    "path", ["/nope", "/api/v2", "/api/v1/namespaces/_/things", f"{ACTIONS}/a/b/c"]
)
async def test_unknown_paths_are_404_envelopes(guest: Tenant, path: str) -> None:
    r = await guest.client.get(path)
    assert r.status_code == 404
    assert r.json() == {"error": "The requested resource does not exist.", "code": "not_found"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1"),
        ("DELETE", "/api/v1/namespaces"),
        ("PUT", ACTIONS),
        ("POST", "/api/v1/namespaces/_/packages/p"),
        ("PUT", "/api/v1/namespaces/_/activations/x"),
    ],
)
async def test_wrong_methods_are_405_envelopes(guest: Tenant, method: str, path: str) -> None:
    r = await guest.client.request(method, path)
    assert r.status_code == 405
    assert r.json()["code"] == "method_not_allowed"
    assert "GET" in r.headers["allow"] or "PUT" in r.headers["allow"]


async def test_unexpected_errors_are_500_envelopes_and_logged(
    app: Starlette, guest: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    app.state.wisp.entities.list_actions = broken
    r = await guest.client.get(ACTIONS)
    assert r.status_code == 500
    assert r.json()["code"] == "internal" and "secret" not in r.json()["error"]
    assert "secret internals" in caplog.text


async def test_errors_after_submit_carry_the_activation_id(
    guest: Tenant, invoker: FakeInvoker, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await guest.client.put(f"{ACTIONS}/fn", json=hello())).status_code == 200
    submit = invoker.submit

    def failing(*args: object, **kwargs: object) -> object:
        invocation = submit(*args, **kwargs)  # type: ignore[arg-type]
        invocation.done = asyncio.get_running_loop().create_future()
        invocation.done.set_exception(RuntimeError("invoker bug"))
        return invocation

    monkeypatch.setattr(invoker, "submit", failing)
    r = await guest.client.post(f"{ACTIONS}/fn?blocking=true")
    assert r.status_code == 500 and len(r.headers["x-openwhisk-activation-id"]) == 32


async def test_head_is_served_for_gets(anonymous: httpx.AsyncClient) -> None:
    assert (await anonymous.head("/healthz")).status_code == 200
