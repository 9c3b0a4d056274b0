"""SQL for aliases of function versions, kept apart from ``sql.py``: each function runs
inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, Row, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from wisp.models import Alias
from wisp.store import schema

Insert = postgresql.Insert | sqlite.Insert
Key = tuple[str, str, str]  # (namespace, package, name) of the function


def _of(key: Key) -> list[ColumnElement[bool]]:
    t = schema.action_aliases
    namespace, package, name = key
    return [t.c.namespace == namespace, t.c.package == package, t.c.name == name]


def put_alias(conn: Connection, insert: Insert, alias: Alias) -> None:
    row = {
        "namespace": alias.namespace,
        "package": alias.package,
        "name": alias.name,
        "alias": alias.alias,
        "version": alias.version,
        "updated": alias.updated,
        "subject": alias.subject,
    }
    stmt = insert.values(row)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["namespace", "package", "name", "alias"],
            set_={
                "version": stmt.excluded.version,
                "updated": stmt.excluded.updated,
                "subject": stmt.excluded.subject,
            },
        )
    )


def list_aliases(conn: Connection, key: Key) -> list[Alias]:
    t = schema.action_aliases
    rows = conn.execute(select(t).where(*_of(key)).order_by(t.c.alias)).all()
    return [_alias(r) for r in rows]


def get_alias(conn: Connection, key: Key, alias: str) -> Alias | None:
    t = schema.action_aliases
    row = conn.execute(select(t).where(*_of(key), t.c.alias == alias)).first()
    return _alias(row) if row else None


def delete_aliases(conn: Connection, key: Key, alias: str | None) -> int:
    """Delete one alias of a function, or all of them (``alias=None``); return count."""
    t = schema.action_aliases
    query = delete(t).where(*_of(key))
    if alias is not None:
        query = query.where(t.c.alias == alias)
    return conn.execute(query).rowcount


def _alias(row: Row[object]) -> Alias:
    return Alias(
        namespace=row.namespace,
        package=row.package,
        name=row.name,
        alias=row.alias,
        version=row.version,
        updated=row.updated,
        subject=row.subject,
    )
