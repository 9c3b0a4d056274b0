"""Fixtures shared by every test package."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the test session, dropped at the end.

    The server is ``WISP_TEST_POSTGRES_URL`` (any database on it), else the local
    one. When it cannot be reached the test is skipped, or failed when ``CI`` is
    set: CI must run the PostgreSQL tests.
    """
    server = make_url(os.environ.get("WISP_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.OperationalError as e:
        message = f"PostgreSQL at {server.render_as_string()} is unreachable: {e}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with new_database(server.render_as_string(hide_password=False)) as url:
        yield url


@pytest.fixture
def empty_postgres_url(postgres_url: str) -> Iterator[str]:
    """A brand-new database with no schema at all, dropped after the test."""
    with new_database(postgres_url) as url:
        yield url


@contextlib.contextmanager
def new_database(url: str) -> Iterator[str]:
    """A new, empty database on the server of ``url``; dropped after, connections and all."""
    server = make_url(url)
    dsn = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"wisp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def server_umask() -> Iterator[None]:
    """`wisp server` runs with umask 077 (its files are private): sandboxes must cope."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)
