"""What a hostile caller can make the gateway spend: store queries and cache entries
per made-up Host or namespace, PBKDF2 per guessed password, threads per request."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.api.conftest import Tenant
from tests.gateway.conftest import client_from, make_route
from wisp.gateway import policies, serve
from wisp.models import GatewayRoute
from wisp.store.base import Store
from wisp.store.memory import MemoryStore


class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.route_queries: list[tuple[str | None, str | None]] = []
        self.owner_queries = 0

    def list_routes(
        self, namespace: str | None = None, host: str | None = None
    ) -> list[GatewayRoute]:
        self.route_queries.append((namespace, host))
        return super().list_routes(namespace, host)

    def route_owners(self) -> list[tuple[str, str]]:
        self.owner_queries += 1
        return super().route_owners()


@pytest.fixture
def store() -> Store:
    return CountingStore()


def gateway(app: Starlette) -> serve.Gateway:
    found: serve.Gateway = app.state.gateway
    return found


async def test_made_up_hosts_and_namespaces_cost_no_query_and_no_cache_entry(
    guest: Tenant, echo: str, app: Starlette, store: CountingStore
) -> None:
    await make_route(guest, responseType="json", host="api.example.com")
    started = time.monotonic()
    async with client_from(app, "203.0.113.7") as client:
        assert (await client.get("http://api.example.com/shop/items/5")).status_code == 200
        store.route_queries.clear()
        for i in range(10_000):
            r = await client.get(f"http://h{i}.example.net/shop/items/5")
            assert r.status_code == 404
        for i in range(1_000):
            r = await client.get(f"http://api.example.com/gw/nobody{i}/shop/items/5")
            assert r.status_code == 404
        assert (await client.get("http://api.example.com/shop/items/6")).json()["id"] == "6"
    elapsed = time.monotonic() - started
    assert store.route_queries == [] or all(
        h in (None, "api.example.com") for _, h in store.route_queries
    )
    assert len(store.route_queries) <= 1 + elapsed / serve.ROUTE_CACHE_TTL
    assert store.owner_queries <= 2 + elapsed / serve.ROUTE_CACHE_TTL
    assert gateway(app).cached_tables <= 2


async def test_the_table_cache_is_bounded(
    guest: Tenant,
    echo: str,
    app: Starlette,
    store: CountingStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(serve, "TABLES_MAX", 3)
    hosts = [f"api{i}.example.com" for i in range(8)]
    for i, host in enumerate(hosts):
        await make_route(guest, responseType="json", path=f"/p{i}", host=host)
    async with client_from(app, "203.0.113.7") as client:
        for i, host in enumerate(hosts):
            assert (await client.get(f"http://{host}/shop/p{i}")).status_code == 200
            assert gateway(app).cached_tables <= 3
        # The most recently used stay: asking again for the last one is no query.
        before = len(store.route_queries)
        assert (await client.get(f"http://{hosts[-1]}/shop/p7")).status_code == 200
        assert len(store.route_queries) == before


BASIC = {"type": "basic", "users": {"ada": "correct horse"}}


class CountingHash:
    """Stands for verify_password: counts calls, where they run, and how many at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0
        self.running = 0
        self.most = 0
        self.threads: set[str] = set()
        self.lock = threading.Lock()
        self.real = policies.verify_password

    def __call__(self, password: str, stored: str) -> bool:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(self.delay)
            return bool(self.real(password, stored))
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> CountingHash:
    counting = CountingHash()
    monkeypatch.setattr(policies, "verify_password", counting)
    return counting


async def test_basic_failures_are_limited_per_address_before_hashing(
    guest: Tenant, echo: str, app: Starlette, hashes: CountingHash
) -> None:
    await make_route(guest, responseType="json", policy=BASIC)
    url = f"/gw/{guest.name}/shop/items/1"
    async with client_from(app, "203.0.113.7") as attacker:
        for _ in range(serve.FAILURES_BURST):
            assert (await attacker.get(url, auth=("ada", "guess"))).status_code == 401
        for password in ("guess", "correct horse"):
            r = await attacker.get(url, auth=("ada", password))
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            assert r.json()["error"].startswith("Too many failed sign-in attempts")
    assert hashes.calls == serve.FAILURES_BURST  # refused ones hashed nothing
    assert all(name.startswith("wisp-pbkdf2") for name in hashes.threads)
    async with client_from(app, "198.51.100.1") as someone_else:
        r = await someone_else.get(url, auth=("ada", "correct horse"))
        assert r.status_code == 200 and r.json()["__ow_user"] == "ada"


@pytest.mark.parametrize("by", ["ip", "client"])
async def test_basic_failures_take_rate_limit_tokens(
    guest: Tenant, echo: str, app: Starlette, hashes: CountingHash, by: str
) -> None:
    rate = {"requests": 3, "per": 60, "by": by}
    await make_route(guest, responseType="json", policy=BASIC, rateLimit=rate)
    url = f"/gw/{guest.name}/shop/items/1"
    async with client_from(app, "203.0.113.7") as attacker:
        for _ in range(3):
            assert (await attacker.get(url, auth=("ada", "guess"))).status_code == 401
        r = await attacker.get(url, auth=("ada", "correct horse"))
        assert r.status_code == 429 and "rate limit" in r.json()["error"]
    assert hashes.calls == 3


async def test_concurrent_hashing_is_capped_and_the_rest_get_503(
    guest: Tenant, echo: str, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = CountingHash(delay=0.3)
    monkeypatch.setattr(policies, "verify_password", slow)
    await make_route(guest, responseType="json", policy=BASIC)
    url = f"/gw/{guest.name}/shop/items/1"
    clients = [client_from(app, f"203.0.113.{i}") for i in range(1, 11)]

    async def attempt(client: httpx.AsyncClient) -> httpx.Response:
        async with client:
            return await client.get(url, auth=("ada", "guess"))

    answers = await asyncio.gather(*(attempt(c) for c in clients))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [401] * policies.HASHING + [503] * (10 - policies.HASHING)
    busy: Any = next(r for r in answers if r.status_code == 503)
    assert busy.headers["retry-after"] == "1" and "password checks" in busy.json()["error"]
    assert slow.most <= policies.HASHING and slow.calls == policies.HASHING
