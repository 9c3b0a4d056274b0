"""What only the SQL store does: URLs, connection settings, errors at the boundary."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from wisp.errors import PlatformError
from wisp.store import open_store
from wisp.store.memory import MemoryStore
from wisp.store.sql import SqlStore, database_url

from .test_contract import activation, namespace


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db:5432/wisp",
        "postgres://u:p@db:5432/wisp",
        "postgresql+psycopg://u:p@db:5432/wisp",
    ],
)
def test_postgresql_urls_use_psycopg3(url: str) -> None:
    assert database_url(url).drivername == "postgresql+psycopg"
    assert database_url(url).database == "wisp"


@pytest.mark.parametrize("url", ["mysql://db/wisp", "postgresql+psycopg2://db/x", "not a url"])
def test_unsupported_urls_are_refused(url: str) -> None:
    with pytest.raises(PlatformError):
        SqlStore(url)


def test_unreachable_database_is_a_platform_error() -> None:
    store = SqlStore("postgresql://wisp:hunter2@127.0.0.1:1/wisp")
    with pytest.raises(PlatformError, match="unavailable") as caught:
        store.get_namespace("guest")
    assert "hunter2" not in caught.value.message
    store.close()


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'new' / 'dir' / 'wisp.db'}")  # parents created
    store.migrate()
    with store.engine.connect() as conn:

        def pragma(name: str) -> object:
            return conn.execute(text(f"PRAGMA {name}")).scalar()

        assert pragma("journal_mode") == "wal"
        assert pragma("synchronous") == 1  # NORMAL
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 10_000
    store.close()


def test_in_memory_sqlite_works_from_threads() -> None:
    store = SqlStore("sqlite://")
    store.migrate()
    threads = [
        threading.Thread(
            target=store.insert_activations, args=([activation("fn", i) for i in range(50)],)
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.list_activations("guest", limit=500)) == 200
    store.close()


def test_sqlite_file_is_usable_from_many_threads(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    store.migrate()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                store.insert_activations([activation(f"fn{n}", i) for _ in range(10)])
                store.list_activations("guest", name=f"fn{n}")
                store.create_namespace(namespace(f"ns-{n}-{i}"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list_activations("guest", limit=5000)) == 8 * 20 * 10
    assert len(store.list_namespaces()) == 8 * 20
    store.close()


def test_open_store(sqlite_url: str) -> None:
    assert isinstance(open_store("memory://"), MemoryStore)
    store = open_store(sqlite_url)
    assert isinstance(store, SqlStore)
    assert store.list_namespaces() == []  # migrated already
    store.close()
