"""Store fixtures: the same tests run against every backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from wisp.store.base import Store
from wisp.store.memory import MemoryStore
from wisp.store.sql import SqlStore

TABLES = "namespaces, packages, actions, action_versions, activations, triggers, rules, activation_rollups, routes, invoke_configs, dead_letters, idempotency_keys"
BACKENDS = ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_url: str) -> str:
    """The session's PostgreSQL database, migrated once."""
    store = SqlStore(postgres_url)
    store.migrate()
    store.close()
    return postgres_url


@pytest.fixture
def clean_postgres_url(migrated_postgres_url: str) -> str:
    """The migrated session database, emptied for this test."""
    dsn = make_url(migrated_postgres_url).render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
    return migrated_postgres_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wisp.db'}"


@pytest.fixture(params=SQL_BACKENDS)
def empty_sql_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    """A URL of a database without a schema, on each SQL backend."""
    if request.param == "sqlite":
        return sqlite_url
    return str(request.getfixturevalue("empty_postgres_url"))


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[Store]:
    """An empty, migrated store of each backend."""
    backend: Store
    if request.param == "memory":
        backend = MemoryStore()
    elif request.param == "sqlite":
        backend = SqlStore(sqlite_url)
    else:
        backend = SqlStore(request.getfixturevalue("clean_postgres_url"))
    backend.migrate()
    yield backend
    backend.close()
