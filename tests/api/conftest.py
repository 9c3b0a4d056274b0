"""The API over in-memory (or SQL) stores, the real activation writer, and a FakeInvoker.

ASGITransport does not run the app's lifespan, so the platform fixture starts and
stops the platform itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from wisp.api import create_app
from wisp.config import Limits, Settings
from wisp.entities import EntityService
from wisp.invoker.memory import Call, MemoryInvoker, Reply
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, INTERNAL_ERROR
from wisp.namespaces import create_namespace
from wisp.platform import Platform
from wisp.runtimes import RuntimeTable, discover
from wisp.store.base import Store
from wisp.store.memory import MemoryStore
from wisp.store.writer import ActivationWriter

SYNC_LIMIT = 0.1  # seconds: "slow" invocations outlast it
SLOW_DELAY = 0.4
PAYLOAD_MAX = 16 * 1024
CODE_MAX = 64 * 1024
KIND = discover()[0].kind  # "python:3.x" of this interpreter


class FakeInvoker(MemoryInvoker):
    """The in-memory invoker, steered by parameters: the result echoes the merged
    parameters; ``fail`` → application error, ``crash`` → developer error,
    ``internal`` → whisk internal error, ``slow`` → finishes after ``delay``."""

    def __init__(self, writer: ActivationWriter, delay: float = SLOW_DELAY) -> None:
        super().__init__(writer)
        self.delay = delay

    def reply(self, call: Call) -> Reply:
        params = call.params
        reply = Reply(logs=[f"2026-01-01T00:00:00.000000Z stdout: {sorted(params)}"])
        if "fail" in params:
            reply.status, reply.result = APPLICATION_ERROR, {"error": "it failed"}
        elif "crash" in params:
            reply.status = DEVELOPER_ERROR
            reply.result = {"error": "The action did not return a dictionary."}
        elif "internal" in params:
            reply.status, reply.result = INTERNAL_ERROR, {"error": "the sandbox went away"}
        if "slow" in params:
            reply.delay = self.delay
        return reply


@pytest.fixture
def settings() -> Settings:
    return Settings(
        sync_limit=SYNC_LIMIT,
        limits=Limits(payload_max=PAYLOAD_MAX, code_max=CODE_MAX),
    )


@pytest.fixture
def store_kind() -> str:
    """Overridden with params where a test module runs against every store."""
    return "memory"


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    if store_kind == "memory":
        yield MemoryStore()
        return
    from wisp.store.sql import SqlStore

    if store_kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'wisp.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    sql = SqlStore(url)
    sql.migrate()
    yield sql
    sql.close()


@pytest.fixture
async def platform(settings: Settings, store: Store) -> AsyncIterator[Platform]:
    writer = ActivationWriter(store, batch=settings.writer_batch, interval=0.001)
    platform = Platform(
        settings=settings,
        store=store,
        writer=writer,
        runtimes=RuntimeTable(discover()),
        invoker=FakeInvoker(writer),
    )
    await platform.start()
    yield platform
    await platform.stop()


@pytest.fixture
def invoker(platform: Platform) -> FakeInvoker:
    assert isinstance(platform.invoker, FakeInvoker)
    return platform.invoker


@pytest.fixture
def app(platform: Platform) -> Starlette:
    return create_app(platform)


@pytest.fixture
def entities(app: Starlette) -> EntityService:
    service: EntityService = app.state.wisp.entities
    return service


@dataclass
class Tenant:
    name: str
    auth: str
    client: httpx.AsyncClient

    @property
    def basic(self) -> tuple[str, str]:
        uuid_, _, key = self.auth.partition(":")
        return uuid_, key


def unique(prefix: str) -> str:
    # The PostgreSQL database is shared by the session: keep tenants apart by name.
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _tenant(app: Starlette, store: Store, prefix: str) -> AsyncIterator[Tenant]:
    namespace, auth = create_namespace(store, unique(prefix))
    uuid_, _, key = auth.partition(":")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://wisp.test", auth=(uuid_, key)
    ) as client:
        yield Tenant(namespace.name, auth, client)


@pytest.fixture
async def guest(app: Starlette, store: Store) -> AsyncIterator[Tenant]:
    async for tenant in _tenant(app, store, "guest"):
        yield tenant


@pytest.fixture
async def other(app: Starlette, store: Store) -> AsyncIterator[Tenant]:
    async for tenant in _tenant(app, store, "other"):
        yield tenant


@pytest.fixture
async def anonymous(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wisp.test") as client:
        yield client


def hello(code: str = "def main(args):\n    return args\n", **extra: Any) -> dict[str, Any]:
    """An action PUT body."""
    return {"exec": {"kind": "python:default", "code": code}, **extra}


ACTIONS = "/api/v1/namespaces/_/actions"
PACKAGES = "/api/v1/namespaces/_/packages"
ACTIVATIONS = "/api/v1/namespaces/_/activations"
