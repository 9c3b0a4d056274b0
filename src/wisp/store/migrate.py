"""Versioned schema migrations (Alembic), run in code: no alembic.ini on disk.

The scripts live in ``migrations/`` beside this module and ship as package data.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, select

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant shared by every Wisp process; it only has to differ from other
# applications' advisory locks on the same PostgreSQL server. ("wisp" in ASCII.)
ADVISORY_LOCK_KEY = 0x77697370


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config built in code; ``connection`` is what env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migration scripts found"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database at ``engine`` to the newest revision, atomically.

    Several processes may start at once against one database. The whole upgrade
    runs in one transaction that first takes a database-wide lock, so the others
    wait and then find the schema already at head: PostgreSQL gets a transaction
    advisory lock (DDL is transactional there); SQLite gets ``BEGIN IMMEDIATE``,
    which takes the write lock up front and makes the DDL transactional too.
    """
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "sqlite":
            # pysqlite never begins a transaction before DDL by itself.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
        command.upgrade(alembic_config(conn), "head")
