"""The SQL store: one SQLAlchemy Core implementation for SQLite and PostgreSQL.

Driver exceptions never leave this module: an unreachable database becomes
``StoreUnavailable`` (a 503), a failing one ``PlatformError`` and a uniqueness
violation ``Conflict``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    URL,
    ColumnElement,
    Connection,
    Engine,
    Row,
    Table,
    create_engine,
    delete,
    event,
    exc,
    func,
    make_url,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.pool import StaticPool

from wisp.errors import Conflict, PlatformError, StoreUnavailable, VersionTaken
from wisp.models import (
    Action,
    ActionLimits,
    Activation,
    Alias,
    DeadLetter,
    Exec,
    GatewayRoute,
    IdempotencyClaim,
    Namespace,
    Package,
    Rollup,
    Rule,
    StoredSecret,
    Trigger,
)
from wisp.store import schema, sql_aliases, sql_async
from wisp.store.base import Claim, Store

T = TypeVar("T")

DEFAULT_POOL_SIZE = 8
DEFAULT_MAX_OVERFLOW = 16
SQLITE_BUSY_TIMEOUT = 10.0  # seconds a writer waits for another's lock
POSTGRES_CONNECT_TIMEOUT = 5  # seconds

_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}
_ACTION_KEY = ["namespace", "package", "name"]
# Idempotent: a batch retried after a commit whose acknowledgement was lost is skipped.
_INSERT_ACTIVATIONS = (
    'INSERT INTO activations (activation_id, namespace, name, start, "end", status_code, record) '
    "VALUES ({}) ON CONFLICT (activation_id) DO NOTHING"
)


def database_url(url: str) -> URL:
    """Parse ``url``, sending every PostgreSQL URL to the psycopg (v3) driver."""
    try:
        parsed = make_url(url)
    except exc.ArgumentError as e:
        raise PlatformError(f"invalid database URL {url!r}: {e}") from e
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed
    raise PlatformError(
        f"unsupported database URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://"
    )


def _enable_wal(cursor: Any) -> None:
    """Switch a SQLite database to WAL, waiting out other connections doing the same.

    Changing the journal mode needs an exclusive lock, and SQLite answers "database
    is locked" at once instead of calling the busy handler when several processes
    open a new database together, so retry until the busy timeout runs out.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


class SqlStore(Store):
    """``Store`` over SQLAlchemy Core. Thread-safe; every call is one transaction."""

    def __init__(self, url: str) -> None:
        self.url = database_url(url)
        self._where = self.url.render_as_string(hide_password=True)
        self._serial: AbstractContextManager[Any] = nullcontext()
        if self.url.get_backend_name() == "sqlite":
            self.engine = self._sqlite_engine()
        else:
            self.engine = create_engine(
                self.url,
                pool_size=DEFAULT_POOL_SIZE,
                max_overflow=DEFAULT_MAX_OVERFLOW,
                pool_pre_ping=True,
                connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT},
            )
        self._dialect = self.engine.dialect.name
        marker = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_activations = _INSERT_ACTIVATIONS.format(", ".join([marker] * 7))

    def _sqlite_engine(self) -> Engine:
        database = self.url.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in str(self.url)
        connect_args: dict[str, Any] = {
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT,
        }
        if in_memory:
            # Every connection to :memory: is a new, empty database, so all
            # threads share one connection and take turns on it.
            engine = create_engine(self.url, connect_args=connect_args, poolclass=StaticPool)
            self._serial = threading.RLock()
        else:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(
                self.url,
                connect_args=connect_args,
                pool_size=DEFAULT_POOL_SIZE,
                max_overflow=DEFAULT_MAX_OVERFLOW,
            )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT * 1000)}")
            if not in_memory:
                # WAL: readers never block the writer; NORMAL sync is safe in WAL
                # (a power cut may lose the last commits, never corrupt the file).
                _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        return engine

    # -- plumbing ----------------------------------------------------------
    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except exc.IntegrityError as e:
            raise Conflict(f"already exists: {e.orig}") from e
        except (exc.OperationalError, exc.InterfaceError) as e:
            raise StoreUnavailable(f"database {self._where} is unavailable: {e.orig}") from e
        except exc.SQLAlchemyError as e:
            raise PlatformError(f"database {self._where} failed: {e}") from e

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A connection in a transaction that commits when the block ends."""
        with self._serial, self._translated(), self.engine.begin() as conn:
            yield conn

    def _insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        # Both dialects spell upserts the same way, through different classes.
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _upsert(self, table: Table, row: dict[str, Any], key: list[str]) -> Any:
        stmt = self._insert(table).values(row)
        changes = {c: stmt.excluded[c] for c in row if c not in key}
        return stmt.on_conflict_do_update(index_elements=key, set_=changes)

    # -- lifecycle ---------------------------------------------------------
    def migrate(self) -> None:
        from wisp.store.migrate import upgrade  # Alembic is only needed here

        with self._serial, self._translated():
            upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- namespaces --------------------------------------------------------
    def create_namespace(self, ns: Namespace) -> None:
        row = {
            "name": ns.name,
            "uuid": ns.uuid,
            "key_hash": ns.key_hash,
            "created": ns.created,
            "limits": _dump(ns.limits),
        }
        try:
            with self._begin() as conn:
                conn.execute(schema.namespaces.insert().values(row))
        except Conflict as e:
            if self.get_namespace(ns.name) is None:
                raise Conflict(f"namespace uuid {ns.uuid!r} already exists") from e
            raise Conflict(f"namespace {ns.name!r} already exists") from e

    def get_namespace(self, name: str) -> Namespace | None:
        t = schema.namespaces
        with self._begin() as conn:
            row = conn.execute(select(t).where(t.c.name == name)).first()
        return _namespace(row) if row else None

    def namespace_by_uuid(self, uuid: str) -> Namespace | None:
        t = schema.namespaces
        with self._begin() as conn:
            row = conn.execute(select(t).where(t.c.uuid == uuid)).first()
        return _namespace(row) if row else None

    def list_namespaces(self) -> list[Namespace]:
        t = schema.namespaces
        with self._begin() as conn:
            rows = conn.execute(select(t).order_by(t.c.name)).all()
        return [_namespace(r) for r in rows]

    def set_namespace_limits(self, name: str, limits: dict[str, Any]) -> bool:
        t = schema.namespaces
        with self._begin() as conn:
            done = conn.execute(t.update().where(t.c.name == name).values(limits=_dump(limits)))
        return bool(done.rowcount)

    def set_namespace_key(self, name: str, key_hash: str) -> bool:
        t = schema.namespaces
        with self._begin() as conn:
            done = conn.execute(t.update().where(t.c.name == name).values(key_hash=key_hash))
        return bool(done.rowcount)

    # -- packages ----------------------------------------------------------
    def put_package(self, pkg: Package) -> None:
        row = {
            "namespace": pkg.namespace,
            "name": pkg.name,
            "parameters": _dump(pkg.parameters),
            "annotations": _dump(pkg.annotations),
            "publish": pkg.publish,
            "version": pkg.version,
            "updated": pkg.updated,
        }
        with self._begin() as conn:
            conn.execute(self._upsert(schema.packages, row, ["namespace", "name"]))

    def get_package(self, namespace: str, name: str) -> Package | None:
        return self._get_named(schema.packages, namespace, name, _package)

    def delete_package(self, namespace: str, name: str) -> bool:
        return self._delete_named(schema.packages, namespace, name)

    def list_packages(self, namespace: str, limit: int, skip: int) -> list[Package]:
        return self._list_named(schema.packages, namespace, limit, skip, _package)

    # Packages, triggers and rules are all keyed (namespace, name) and listed by name.
    def _get_named(
        self, t: Table, namespace: str, name: str, convert: Callable[[Row[Any]], T]
    ) -> T | None:
        with self._begin() as conn:
            query = select(t).where(t.c.namespace == namespace, t.c.name == name)
            row = conn.execute(query).first()
        return convert(row) if row else None

    def _delete_named(self, t: Table, namespace: str, name: str) -> bool:
        with self._begin() as conn:
            result = conn.execute(delete(t).where(t.c.namespace == namespace, t.c.name == name))
        return result.rowcount > 0

    def _list_named(
        self, t: Table, namespace: str, limit: int, skip: int, convert: Callable[[Row[Any]], T]
    ) -> list[T]:
        query = select(t).where(t.c.namespace == namespace).order_by(t.c.name)
        with self._begin() as conn:
            rows = conn.execute(query.limit(limit).offset(skip)).all()
        return [convert(r) for r in rows]

    # -- actions -----------------------------------------------------------
    def put_action(self, action: Action) -> None:
        row = _action_row(action)
        v = schema.action_versions
        version_key = [*_ACTION_KEY, "version"]
        with self._begin() as conn:
            # The action row first (the version row's foreign key needs it). On
            # PostgreSQL a concurrent put of the same action waits here for the
            # other transaction, then finds its version row below.
            conn.execute(self._upsert(schema.actions, row, _ACTION_KEY))
            stmt = self._insert(v).values(row).on_conflict_do_nothing(index_elements=version_key)
            # RETURNING, as psycopg's rowcount for this statement is -1.
            if conn.execute(stmt.returning(v.c.id)).first() is None:
                query = select(v).where(
                    *_is_action(v, action.namespace, action.package, action.name),
                    v.c.version == action.version,
                )
                stored = conn.execute(query).one()
                if _content(stored._asdict()) != _content(row):
                    raise VersionTaken(
                        f"version {action.version} of action {action.path!r} was stored by "
                        "another update; versions are immutable"
                    )

    def get_action(self, namespace: str, package: str, name: str) -> Action | None:
        t = schema.actions
        query = select(t).where(*_is_action(t, namespace, package, name))
        with self._begin() as conn:
            row = conn.execute(query).first()
        return _action(row) if row else None

    def get_action_version(
        self, namespace: str, package: str, name: str, version: str
    ) -> Action | None:
        t = schema.action_versions
        query = select(t).where(*_is_action(t, namespace, package, name), t.c.version == version)
        with self._begin() as conn:
            row = conn.execute(query).first()
        return _action(row) if row else None

    def list_action_versions(self, namespace: str, package: str, name: str) -> list[str]:
        t = schema.action_versions
        query = select(t.c.version).where(*_is_action(t, namespace, package, name)).order_by(t.c.id)
        with self._begin() as conn:
            return list(conn.execute(query).scalars())

    def prune_action_versions(
        self, namespace: str, package: str, name: str, keep: int, pinned: Collection[str] = ()
    ) -> list[str]:
        a, v = schema.actions, schema.action_versions
        where = _is_action(v, namespace, package, name)
        with self._begin() as conn:
            query = select(v.c.version).where(*where).order_by(v.c.id)
            versions = list(conn.execute(query).scalars())
            current = conn.execute(
                select(a.c.version).where(*_is_action(a, namespace, package, name))
            ).scalar()
            kept = {*pinned, *versions[max(len(versions) - keep, 0) :], current}
            pruned = [version for version in versions if version not in kept]
            if pruned:
                conn.execute(delete(v).where(*where, v.c.version.in_(pruned)))
        return pruned

    def delete_action(self, namespace: str, package: str, name: str) -> bool:
        a, v = schema.actions, schema.action_versions
        with self._begin() as conn:
            # Explicit rather than trusting ON DELETE CASCADE: SQLite enforces it
            # only on connections that turned foreign keys on.
            conn.execute(delete(v).where(*_is_action(v, namespace, package, name)))
            sql_async.delete_invoke_config(conn, (namespace, package, name))
            sql_aliases.delete_aliases(conn, (namespace, package, name), None)
            result = conn.execute(delete(a).where(*_is_action(a, namespace, package, name)))
        return result.rowcount > 0

    def list_actions(
        self, namespace: str, package: str | None, limit: int, skip: int
    ) -> list[Action]:
        t = schema.actions
        query = select(t).where(t.c.namespace == namespace)
        if package is not None:
            query = query.where(t.c.package == package)
        query = query.order_by(t.c.package, t.c.name).limit(limit).offset(skip)
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [_action(r) for r in rows]

    def count_actions(self, namespace: str, package: str | None) -> int:
        t = schema.actions
        query = select(func.count()).select_from(t).where(t.c.namespace == namespace)
        if package is not None:
            query = query.where(t.c.package == package)
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

    # -- activations -------------------------------------------------------
    def insert_activations(self, records: list[Activation]) -> None:
        """Also idempotent: an id already stored is skipped, so a writer may retry
        a batch whose commit succeeded but whose acknowledgement was lost."""
        if not records:
            return
        # Serialise before the transaction so the write lock is held briefly.
        rows = [
            (
                r.activation_id,
                r.namespace,
                r.name,
                r.start,
                r.end,
                r.status_code,
                r.encoded().decode(),
            )
            for r in records
        ]
        # The driver's own executemany: the compiled statement's per-row parameter
        # processing cost about as much as the insert itself (the writer's thread
        # holds the GIL meanwhile, on the invoke path's critical resource).
        with self._begin() as conn:
            conn.exec_driver_sql(self._insert_activations, rows)

    def get_activation(self, namespace: str, activation_id: str) -> Activation | None:
        t = schema.activations
        query = select(t.c.record).where(
            t.c.activation_id == activation_id, t.c.namespace == namespace
        )
        with self._begin() as conn:
            record = conn.execute(query).scalar()
        return Activation.from_json(json.loads(record)) if record is not None else None

    def list_activations(
        self,
        namespace: str,
        name: str | None = None,
        since: int | None = None,
        upto: int | None = None,
        limit: int = 30,
        skip: int = 0,
    ) -> list[Activation]:
        t = schema.activations
        query = select(t.c.record).where(t.c.namespace == namespace)
        if name is not None and name.endswith("/"):
            # Not LIKE: SQLite's LIKE ignores case, and '_' or '%' in a name
            # would be wildcards.
            query = query.where(func.substr(t.c.name, 1, len(name)) == name)
        elif name is not None:
            query = query.where(t.c.name == name)
        if since is not None:
            query = query.where(t.c.start >= since)
        if upto is not None:
            query = query.where(t.c.start <= upto)
        query = query.order_by(t.c.start.desc(), t.c.activation_id.desc())
        with self._begin() as conn:
            records = conn.execute(query.limit(limit).offset(skip)).scalars().all()
        return [Activation.from_json(json.loads(r)) for r in records]

    def purge_activations(self, older_than: int) -> int:
        t = schema.activations
        with self._begin() as conn:
            result = conn.execute(delete(t).where(t.c.start < older_than))
        return int(result.rowcount)

    # -- rollups -------------------------------------------------------------
    def insert_rollups(self, rows: list[Rollup]) -> None:
        if not rows:
            return
        values = [
            {
                "namespace": r.namespace,
                "name": r.name,
                "bucket": r.bucket,
                "count": r.count,
                "errors": r.errors,
                "cold": r.cold,
                "duration_sum": r.duration_sum,
                "histogram": _dump(r.histogram),
                "cpu_sum": r.cpu_sum,
                "memory_max": r.memory_max,
            }
            for r in rows
        ]
        with self._begin() as conn:
            conn.execute(schema.activation_rollups.insert(), values)

    def list_rollups(self, namespace: str, name: str | None, since: int, upto: int) -> list[Rollup]:
        t = schema.activation_rollups
        query = select(t).where(t.c.namespace == namespace, t.c.bucket.between(since, upto))
        if name is not None:
            query = query.where(t.c.name == name)
        with self._begin() as conn:
            rows = conn.execute(query.order_by(t.c.bucket, t.c.id)).all()
        return [
            Rollup(
                namespace=r.namespace,
                name=r.name,
                bucket=r.bucket,
                count=r._mapping["count"],  # Row.count is the tuple method
                errors=r.errors,
                cold=r.cold,
                duration_sum=r.duration_sum,
                histogram=json.loads(r.histogram),
                cpu_sum=r.cpu_sum,
                memory_max=r.memory_max,
            )
            for r in rows
        ]

    def purge_rollups(self, older_than: int) -> int:
        t = schema.activation_rollups
        with self._begin() as conn:
            result = conn.execute(delete(t).where(t.c.bucket < older_than))
        return int(result.rowcount)

    # -- gateway routes ------------------------------------------------------
    def put_route(self, route: GatewayRoute) -> None:
        row = {
            "namespace": route.namespace,
            "base_path": route.base_path,
            "path": route.path,
            "method": route.method,
            "action": route.action,
            "host": route.host,
            "config": _dump(route.config),
            "created": route.created,
            "updated": route.updated,
        }
        key = ["namespace", "base_path", "path", "method"]
        with self._begin() as conn:
            conn.execute(self._upsert(schema.routes, row, key))

    def list_routes(
        self, namespace: str | None = None, host: str | None = None
    ) -> list[GatewayRoute]:
        t = schema.routes
        query = select(t).order_by(t.c.namespace, t.c.base_path, t.c.path, t.c.method)
        if namespace is not None:
            query = query.where(t.c.namespace == namespace)
        if host is not None:
            query = query.where(t.c.host == host)
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [
            GatewayRoute(
                namespace=r.namespace,
                base_path=r.base_path,
                path=r.path,
                method=r.method,
                action=r.action,
                host=r.host,
                config=json.loads(r.config),
                created=r.created,
                updated=r.updated,
            )
            for r in rows
        ]

    def route_owners(self) -> list[tuple[str, str]]:
        t = schema.routes
        query = select(t.c.namespace, t.c.host).distinct().order_by(t.c.namespace, t.c.host)
        with self._begin() as conn:
            return [(r.namespace, r.host) for r in conn.execute(query).all()]

    def delete_routes(
        self, namespace: str, base_path: str, path: str | None, method: str | None
    ) -> int:
        t = schema.routes
        query = delete(t).where(t.c.namespace == namespace, t.c.base_path == base_path)
        if path is not None:
            query = query.where(t.c.path == path)
        if method is not None:
            query = query.where(t.c.method == method)
        with self._begin() as conn:
            return int(conn.execute(query).rowcount)

    # -- triggers and rules --------------------------------------------------
    def put_trigger(self, trigger: Trigger, *, reschedule: bool) -> None:
        row = _trigger_row(trigger)
        stmt = self._insert(schema.triggers).values(row)
        keep = set(_TRIGGER_STATE) - ({"next_run_at"} if reschedule else set())
        changes = {c: stmt.excluded[c] for c in row if c not in keep and c not in _KEY}
        with self._begin() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=_KEY, set_=changes))

    def get_trigger(self, namespace: str, name: str) -> Trigger | None:
        return self._get_named(schema.triggers, namespace, name, _trigger)

    def list_triggers(self, namespace: str, limit: int, skip: int) -> list[Trigger]:
        return self._list_named(schema.triggers, namespace, limit, skip, _trigger)

    def delete_trigger(self, namespace: str, name: str) -> bool:
        return self._delete_named(schema.triggers, namespace, name)

    def due_triggers(self, until: int, limit: int) -> list[Trigger]:
        t = schema.triggers
        query = (
            select(t)
            .where(t.c.next_run_at <= until, t.c.enabled.is_(True))
            .order_by(t.c.next_run_at, t.c.namespace, t.c.name)
            .limit(limit)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [_trigger(r) for r in rows]

    def claim_tick(
        self,
        namespace: str,
        name: str,
        due: int,
        following: int | None,
        now: int,
        hold_until: int | None,
        *,
        run: bool = True,
    ) -> Claim:
        # Writes only, each conditional on next_run_at still being ``due``: the row
        # lock (PostgreSQL) or the write lock (SQLite) makes exactly one replica's
        # UPDATE match, and no read is upgraded to a write (SQLite's WAL would then
        # fail the loser instead of making it wait).
        t = schema.triggers
        mine = (t.c.namespace == namespace, t.c.name == name, t.c.next_run_at == due)
        fire = t.update().where(*mine).values(next_run_at=following, last_run_at=now)
        if hold_until is not None:
            free = or_(t.c.running_until.is_(None), t.c.running_until <= now)
            fire = fire.where(free).values(running_until=hold_until)
        with self._begin() as conn:
            if run and conn.execute(fire).rowcount:
                return "fired"
            if run and hold_until is None:
                return "lost"
            skipped = conn.execute(t.update().where(*mine).values(next_run_at=following))
            return "busy" if skipped.rowcount else "lost"

    def release_trigger(self, namespace: str, name: str, hold_until: int) -> None:
        t = schema.triggers
        query = (
            t.update()
            .where(t.c.namespace == namespace, t.c.name == name, t.c.running_until == hold_until)
            .values(running_until=None)
        )
        with self._begin() as conn:
            conn.execute(query)

    def put_rule(self, rule: Rule) -> None:
        row = {
            "namespace": rule.namespace,
            "name": rule.name,
            "trigger": rule.trigger,
            "action": rule.action,
            "status": rule.status,
            "annotations": _dump(rule.annotations),
            "publish": rule.publish,
            "version": rule.version,
            "updated": rule.updated,
        }
        with self._begin() as conn:
            conn.execute(self._upsert(schema.rules, row, _KEY))

    def get_rule(self, namespace: str, name: str) -> Rule | None:
        return self._get_named(schema.rules, namespace, name, _rule)

    def list_rules(self, namespace: str, limit: int, skip: int) -> list[Rule]:
        return self._list_named(schema.rules, namespace, limit, skip, _rule)

    def delete_rule(self, namespace: str, name: str) -> bool:
        return self._delete_named(schema.rules, namespace, name)

    def rules_for_trigger(self, namespace: str, trigger: str) -> list[Rule]:
        t = schema.rules
        query = select(t).where(t.c.namespace == namespace, t.c.trigger == trigger)
        with self._begin() as conn:
            rows = conn.execute(query.order_by(t.c.name)).all()
        return [_rule(r) for r in rows]

    # -- aliases (SQL in sql_aliases.py) ---------------------------------------
    def put_alias(self, alias: Alias) -> None:
        with self._begin() as conn:
            sql_aliases.put_alias(conn, self._insert(schema.action_aliases), alias)

    def get_alias(self, namespace: str, package: str, name: str, alias: str) -> Alias | None:
        with self._begin() as conn:
            return sql_aliases.get_alias(conn, (namespace, package, name), alias)

    def list_aliases(self, namespace: str, package: str, name: str) -> list[Alias]:
        with self._begin() as conn:
            return sql_aliases.list_aliases(conn, (namespace, package, name))

    def delete_alias(self, namespace: str, package: str, name: str, alias: str) -> bool:
        with self._begin() as conn:
            return sql_aliases.delete_aliases(conn, (namespace, package, name), alias) > 0

    # -- asynchronous work (SQL in sql_async.py) -----------------------------
    def put_invoke_config(
        self, namespace: str, package: str, name: str, config: dict[str, Any], updated: int
    ) -> None:
        insert = self._insert(schema.invoke_configs)
        with self._begin() as conn:
            sql_async.put_invoke_config(conn, insert, (namespace, package, name), config, updated)

    def get_invoke_config(self, namespace: str, package: str, name: str) -> dict[str, Any] | None:
        with self._begin() as conn:
            return sql_async.get_invoke_config(conn, (namespace, package, name))

    def put_dead_letter(self, letter: DeadLetter) -> None:
        with self._begin() as conn:
            sql_async.put_dead_letter(conn, self._insert(schema.dead_letters), letter)

    def get_dead_letter(self, namespace: str, activation_id: str) -> DeadLetter | None:
        with self._begin() as conn:
            return sql_async.get_dead_letter(conn, namespace, activation_id)

    def list_dead_letters(self, namespace: str, limit: int, skip: int) -> list[DeadLetter]:
        with self._begin() as conn:
            return sql_async.list_dead_letters(conn, namespace, limit, skip)

    def delete_dead_letter(self, namespace: str, activation_id: str) -> bool:
        with self._begin() as conn:
            return sql_async.delete_dead_letters(conn, namespace, activation_id) > 0

    def purge_dead_letters(self, namespace: str) -> int:
        with self._begin() as conn:
            return sql_async.delete_dead_letters(conn, namespace, None)

    def claim_idempotency_key(
        self, namespace: str, key: str, claim: IdempotencyClaim, expired_before: int
    ) -> IdempotencyClaim:
        insert = self._insert(schema.idempotency_keys)
        with self._begin() as conn:
            return sql_async.claim_idempotency_key(
                conn, insert, namespace, key, claim, expired_before
            )

    def release_idempotency_key(self, namespace: str, key: str, activation_id: str) -> bool:
        with self._begin() as conn:
            return sql_async.release_idempotency_key(conn, namespace, key, activation_id)

    def purge_idempotency_keys(self, older_than: int) -> int:
        with self._begin() as conn:
            return sql_async.purge_idempotency_keys(conn, older_than)

    # -- secrets -----------------------------------------------------------
    def ensure_data_key(self, namespace: str, wrapped: str) -> str:
        t = schema.data_keys
        with self._begin() as conn:
            conn.execute(
                self._insert(t)
                .values(namespace=namespace, wrapped=wrapped)
                .on_conflict_do_nothing(index_elements=["namespace"])
            )
            return str(
                conn.execute(select(t.c.wrapped).where(t.c.namespace == namespace)).scalar_one()
            )

    def data_keys(self) -> dict[str, str]:
        t = schema.data_keys
        with self._begin() as conn:
            return {r.namespace: r.wrapped for r in conn.execute(select(t)).all()}

    def replace_data_keys(self, wrapped: dict[str, str]) -> None:
        t = schema.data_keys
        with self._begin() as conn:
            for namespace, key in wrapped.items():
                conn.execute(t.update().where(t.c.namespace == namespace).values(wrapped=key))

    def put_secret(self, secret: StoredSecret) -> None:
        row = {
            "namespace": secret.namespace,
            "name": secret.name,
            "ciphertext": secret.ciphertext,
            "size": secret.size,
            "updated": secret.updated,
        }
        with self._begin() as conn:
            conn.execute(self._upsert(schema.secrets, row, ["namespace", "name"]))

    def get_secret(self, namespace: str, name: str) -> StoredSecret | None:
        return self._get_named(schema.secrets, namespace, name, _secret)

    def list_secrets(self, namespace: str) -> list[StoredSecret]:
        t = schema.secrets
        query = select(t).where(t.c.namespace == namespace).order_by(t.c.name)
        with self._begin() as conn:
            return [_secret(r) for r in conn.execute(query).all()]

    def delete_secret(self, namespace: str, name: str) -> bool:
        return self._delete_named(schema.secrets, namespace, name)


def _secret(row: Row[Any]) -> StoredSecret:
    return StoredSecret(
        namespace=row.namespace,
        name=row.name,
        ciphertext=row.ciphertext,
        size=row.size,
        updated=row.updated,
    )


def _is_action(
    table: Table, namespace: str, package: str, name: str
) -> tuple[ColumnElement[bool], ...]:
    c = table.c
    return (c.namespace == namespace, c.package == package, c.name == name)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _namespace(row: Row[Any]) -> Namespace:
    return Namespace(
        name=row.name,
        uuid=row.uuid,
        key_hash=row.key_hash,
        created=row.created,
        limits=json.loads(row.limits),
    )


def _package(row: Row[Any]) -> Package:
    return Package(
        namespace=row.namespace,
        name=row.name,
        parameters=json.loads(row.parameters),
        annotations=json.loads(row.annotations),
        publish=bool(row.publish),
        version=row.version,
        updated=row.updated,
    )


_CONTENT = ("exec", "limits", "parameters", "annotations", "publish")


def _content(row: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a version what it is (not when it was put)."""
    return tuple(json.loads(row[c]) if isinstance(row[c], str) else row[c] for c in _CONTENT)


def _action_row(action: Action) -> dict[str, Any]:
    return {
        "namespace": action.namespace,
        "package": action.package,
        "name": action.name,
        "exec": _dump(asdict(action.exec)),
        "limits": _dump(asdict(action.limits)),
        "parameters": _dump(action.parameters),
        "annotations": _dump(action.annotations),
        "publish": action.publish,
        "version": action.version,
        "updated": action.updated,
        "subject": action.subject,
    }


def _action(row: Row[Any]) -> Action:
    return Action(
        namespace=row.namespace,
        package=row.package,
        name=row.name,
        exec=Exec(**json.loads(row.exec)),
        limits=ActionLimits(**json.loads(row.limits)),
        parameters=json.loads(row.parameters),
        annotations=json.loads(row.annotations),
        publish=bool(row.publish),
        version=row.version,
        updated=row.updated,
        subject=row.subject,
    )


_KEY = ["namespace", "name"]
_TRIGGER_STATE = ("next_run_at", "last_run_at", "running_until")


def _trigger_row(trigger: Trigger) -> dict[str, Any]:
    return {
        "namespace": trigger.namespace,
        "name": trigger.name,
        "parameters": _dump(trigger.parameters),
        "annotations": _dump(trigger.annotations),
        "publish": trigger.publish,
        "version": trigger.version,
        "updated": trigger.updated,
        "enabled": trigger.enabled,
        "cron": trigger.cron,
        "timezone": trigger.timezone,
        "concurrency": trigger.concurrency,
        "missed": trigger.missed,
        "next_run_at": trigger.next_run_at,
        "last_run_at": trigger.last_run_at,
        "running_until": trigger.running_until,
    }


def _trigger(row: Row[Any]) -> Trigger:
    return Trigger(
        namespace=row.namespace,
        name=row.name,
        parameters=json.loads(row.parameters),
        annotations=json.loads(row.annotations),
        publish=bool(row.publish),
        version=row.version,
        updated=row.updated,
        enabled=bool(row.enabled),
        cron=row.cron,
        timezone=row.timezone,
        concurrency=row.concurrency,
        missed=row.missed,
        next_run_at=row.next_run_at,
        last_run_at=row.last_run_at,
        running_until=row.running_until,
    )


def _rule(row: Row[Any]) -> Rule:
    return Rule(
        namespace=row.namespace,
        name=row.name,
        trigger=row.trigger,
        action=row.action,
        status=row.status,
        annotations=json.loads(row.annotations),
        publish=bool(row.publish),
        version=row.version,
        updated=row.updated,
    )
