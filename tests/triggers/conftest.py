"""A platform with a fake clock and a FakeInvoker, for the scheduler and firing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.api.conftest import FakeInvoker
from wisp.config import Settings
from wisp.entities import EntityService
from wisp.platform import Platform
from wisp.runtimes import RuntimeTable, discover
from wisp.store.base import Store
from wisp.store.sql import SqlStore
from wisp.store.writer import ActivationWriter
from wisp.triggers.scheduler import Clock
from wisp.triggers.system import Triggers


class FakeClock(Clock):
    """Time stands still until a test moves it; nothing really sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def set(self, year: int, month: int, day: int, hour: int, minute: int, second: float) -> None:
        whole = int(second)
        moment = datetime(year, month, day, hour, minute, whole, tzinfo=UTC)
        self.now = moment.timestamp() + (second - whole)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch ms."""
    return round(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def clock() -> FakeClock:
    clock = FakeClock(0)
    clock.set(2025, 6, 1, 12, 0, 1)
    return clock


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    sql = SqlStore(f"sqlite:///{tmp_path / 'wisp.db'}")
    sql.migrate()
    yield sql
    sql.close()


@pytest.fixture
async def platform(store: Store) -> AsyncIterator[Platform]:
    settings = Settings()
    writer = ActivationWriter(store, interval=0.001)
    platform = Platform(settings, store, writer, RuntimeTable(discover()), FakeInvoker(writer))
    await platform.start()
    yield platform
    await platform.stop()


@pytest.fixture
def invoker(platform: Platform) -> FakeInvoker:
    assert isinstance(platform.invoker, FakeInvoker)
    return platform.invoker


@pytest.fixture
def entities(platform: Platform) -> EntityService:
    return EntityService(platform.store, platform.runtimes, platform.settings.limits)


@pytest.fixture
def triggers(platform: Platform, entities: EntityService, clock: FakeClock) -> Triggers:
    return Triggers.build(platform, entities, clock)
