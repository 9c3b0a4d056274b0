"""SQL for asynchronous work (invoke configs, dead letters, idempotency keys), kept
apart from ``sql.py``: each function runs inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from wisp.models import DeadLetter, IdempotencyClaim
from wisp.store import schema

Insert = postgresql.Insert | sqlite.Insert


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def put_invoke_config(
    conn: Connection,
    insert: Insert,
    key: tuple[str, str, str],
    config: dict[str, Any],
    updated: int,
) -> None:
    namespace, package, name = key
    row = {
        "namespace": namespace,
        "package": package,
        "name": name,
        "config": _dump(config),
        "updated": updated,
    }
    stmt = insert.values(row)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["namespace", "package", "name"],
            set_={"config": stmt.excluded.config, "updated": stmt.excluded.updated},
        )
    )


def get_invoke_config(conn: Connection, key: tuple[str, str, str]) -> dict[str, Any] | None:
    t = schema.invoke_configs
    namespace, package, name = key
    query = select(t.c.config).where(
        t.c.namespace == namespace, t.c.package == package, t.c.name == name
    )
    raw = conn.execute(query).scalar()
    return dict(json.loads(raw)) if raw is not None else None


def delete_invoke_config(conn: Connection, key: tuple[str, str, str]) -> None:
    t = schema.invoke_configs
    namespace, package, name = key
    conn.execute(
        delete(t).where(t.c.namespace == namespace, t.c.package == package, t.c.name == name)
    )


def put_dead_letter(conn: Connection, insert: Insert, letter: DeadLetter) -> None:
    row = {
        "activation_id": letter.activation_id,
        "namespace": letter.namespace,
        "name": letter.name,
        "version": letter.version,
        "reason": letter.reason,
        "created": letter.created,
        "attempts": letter.attempts,
        "request": _dump(letter.request),
        "response": _dump(letter.response),
    }
    stmt = insert.values(row)
    changes = {c: stmt.excluded[c] for c in row if c != "activation_id"}
    conn.execute(stmt.on_conflict_do_update(index_elements=["activation_id"], set_=changes))


def get_dead_letter(conn: Connection, namespace: str, activation_id: str) -> DeadLetter | None:
    t = schema.dead_letters
    query = select(t).where(t.c.activation_id == activation_id, t.c.namespace == namespace)
    row = conn.execute(query).first()
    return _letter(row) if row else None


def list_dead_letters(conn: Connection, namespace: str, limit: int, skip: int) -> list[DeadLetter]:
    t = schema.dead_letters
    query = (
        select(t)
        .where(t.c.namespace == namespace)
        .order_by(t.c.created.desc(), t.c.activation_id.desc())
        .limit(limit)
        .offset(skip)
    )
    return [_letter(r) for r in conn.execute(query).all()]


def delete_dead_letters(conn: Connection, namespace: str, activation_id: str | None) -> int:
    t = schema.dead_letters
    query = delete(t).where(t.c.namespace == namespace)
    if activation_id is not None:
        query = query.where(t.c.activation_id == activation_id)
    return int(conn.execute(query).rowcount)


def claim_idempotency_key(
    conn: Connection,
    insert: Insert,
    namespace: str,
    key: str,
    claim: IdempotencyClaim,
    expired_before: int,
) -> IdempotencyClaim:
    # One statement decides: the primary key makes concurrent inserts of one key
    # wait for each other (PostgreSQL) or serialise on the write lock (SQLite); the
    # loser's conflict updates only an expired claim. The read after it, in the
    # same transaction, sees whichever claim holds the key now.
    t = schema.idempotency_keys
    stmt = insert.values(
        namespace=namespace,
        key=key,
        body_hash=claim.body_hash,
        activation_id=claim.activation_id,
        created=claim.created,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["namespace", "key"],
            set_={
                "body_hash": stmt.excluded.body_hash,
                "activation_id": stmt.excluded.activation_id,
                "created": stmt.excluded.created,
            },
            where=t.c.created < expired_before,
        )
    )
    row = conn.execute(
        select(t.c.activation_id, t.c.body_hash, t.c.created).where(
            t.c.namespace == namespace, t.c.key == key
        )
    ).one()
    return IdempotencyClaim(row.activation_id, row.body_hash, row.created)


def release_idempotency_key(
    conn: Connection, namespace: str, key: str, activation_id: str
) -> bool:
    t = schema.idempotency_keys
    query = delete(t).where(
        t.c.namespace == namespace, t.c.key == key, t.c.activation_id == activation_id
    )
    return bool(conn.execute(query).rowcount)


def purge_idempotency_keys(conn: Connection, older_than: int) -> int:
    t = schema.idempotency_keys
    return int(conn.execute(delete(t).where(t.c.created < older_than)).rowcount)


def _letter(row: Row[Any]) -> DeadLetter:
    return DeadLetter(
        activation_id=row.activation_id,
        namespace=row.namespace,
        name=row.name,
        version=row.version,
        reason=row.reason,
        created=row.created,
        attempts=row.attempts,
        request=json.loads(row.request),
        response=json.loads(row.response),
    )
