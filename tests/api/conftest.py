"""The API over in-memory (or SQL) stores, the real activation writer, and a FakeInvoker.

ASGITransport does not run the app's lifespan, so the platform fixture starts and
stops the platform itself.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from wisp.api import create_app
from wisp.config import Limits, Settings
from wisp.entities import EntityService
from wisp.ids import activation_id as new_activation_id
from wisp.invoker.base import Invocation, Invoker, Target
from wisp.models import (
    APPLICATION_ERROR,
    DEVELOPER_ERROR,
    INTERNAL_ERROR,
    SUCCESS,
    Activation,
)
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


@dataclass
class Call:
    target: Target
    params: dict[str, Any]
    subject: str
    activation_id: str


@dataclass
class FakeInvoker(Invoker):
    """Fabricates records: the result echoes the merged parameters.

    Parameters steer the outcome: ``fail`` → application error, ``crash`` → developer
    error, ``internal`` → whisk internal error, ``slow`` → finishes after SLOW_DELAY.
    """

    writer: ActivationWriter
    delay: float = SLOW_DELAY
    calls: list[Call] = field(default_factory=list)
    started: bool = False
    _timers: list[asyncio.TimerHandle] = field(default_factory=list)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False
        for timer in self._timers:
            timer.cancel()

    def submit(
        self,
        target: Target,
        params: dict[str, Any],
        *,
        subject: str,
        cause: str | None = None,
        blocking: bool = False,
        activation_id: str | None = None,
    ) -> Invocation:
        loop = asyncio.get_running_loop()
        aid = activation_id or new_activation_id()
        self.calls.append(Call(target, params, subject, aid))
        merged = {**target.parameters, **params}
        status, result = SUCCESS, merged
        if "fail" in params:
            status, result = APPLICATION_ERROR, {"error": "it failed"}
        elif "crash" in params:
            status, result = DEVELOPER_ERROR, {"error": "The action did not return a dictionary."}
        elif "internal" in params:
            status, result = INTERNAL_ERROR, {"error": "the sandbox went away"}
        action = target.action
        start = time.time_ns() // 1_000_000
        record = Activation(
            activation_id=aid,
            namespace=action.namespace,
            name=action.path,
            version=action.version,
            subject=subject,
            start=start,
            end=start,
            status_code=status,
            result=result,
            logs=[f"2026-01-01T00:00:00.000000Z stdout: {sorted(params)}"],
            annotations=[
                {"key": "path", "value": action.fqn},
                {"key": "kind", "value": action.exec.kind},
                {"key": "waitTime", "value": 0},
            ],
            cause=cause,
            result_size=len(json.dumps(result)),
        )
        done: asyncio.Future[Activation] = loop.create_future()

        def finish() -> None:
            record.end = time.time_ns() // 1_000_000
            self.writer.submit(record)
            done.set_result(record)

        if "slow" in params:
            self._timers.append(loop.call_later(self.delay, finish))
        else:
            finish()
        return Invocation(aid, done)


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
