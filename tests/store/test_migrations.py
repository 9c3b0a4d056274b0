"""Schema migrations on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from wisp.store import migrate, schema
from wisp.store.sql import SqlStore

from .test_contract import activation, namespace


def test_head_is_the_initial_revision() -> None:
    assert migrate.head_revision() == "0008"


def test_migrate_creates_the_schema_at_head(empty_sql_url: str) -> None:
    store = SqlStore(empty_sql_url)
    assert migrate.current_revision(store.engine) is None
    store.migrate()
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    tables = set(inspect(store.engine).get_table_names())
    assert tables == {*schema.metadata.tables, "alembic_version"}
    store.close()


def test_migrations_match_the_schema_module(empty_sql_url: str) -> None:
    store = SqlStore(empty_sql_url)
    store.migrate()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), schema.metadata)
    assert diff == []
    store.close()


def test_migrating_twice_is_a_no_op(empty_sql_url: str) -> None:
    store = SqlStore(empty_sql_url)
    store.migrate()
    store.create_namespace(namespace())
    record = activation("fn", 1000)
    store.insert_activations([record])
    store.migrate()
    store.close()

    again = SqlStore(empty_sql_url)
    again.migrate()
    with again.engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [migrate.head_revision()]
    assert again.get_namespace("guest") == namespace()
    assert again.get_activation("guest", record.activation_id) == record
    again.close()


def test_concurrent_migrations_do_not_collide(empty_sql_url: str) -> None:
    # Separate stores, so separate connections: like several processes starting.
    stores = [SqlStore(empty_sql_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: SqlStore) -> None:
        barrier.wait()
        try:
            store.migrate()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "migrations deadlocked"
    assert errors == []
    assert migrate.current_revision(stores[0].engine) == migrate.head_revision()
    with stores[0].engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
    assert count == 1
    for store in stores:
        store.close()
