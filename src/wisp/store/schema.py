"""The SQL schema, shared by SQLite and PostgreSQL.

This is the *current* shape, used by queries and to check migrations against.
Changing it means adding a migration under ``migrations/versions/`` that brings
an existing database to the same shape (``tests/store/test_migrations.py``
compares the two).

JSON-ish fields (parameters, annotations, limits, exec) are stored as JSON text
rather than a JSON column type: both backends then store and return the same
bytes, and nothing queries inside them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

NAME = 256  # OpenWhisk entity names are at most 256 characters

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("name", String(NAME), nullable=False),
    Column("uuid", String(64), nullable=False),
    Column("key_hash", String(128), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("limits", Text, nullable=False),
    PrimaryKeyConstraint("name"),
    UniqueConstraint("uuid"),
)

packages = Table(
    "packages",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("parameters", Text, nullable=False),
    Column("annotations", Text, nullable=False),
    Column("publish", Boolean, nullable=False),
    Column("version", String(32), nullable=False),
    Column("updated", BigInteger, nullable=False),
    PrimaryKeyConstraint("namespace", "name"),
)


def _action_columns() -> list[Column[Any]]:
    """The columns an action row and an action version row have in common."""
    return [
        Column("namespace", String(NAME), nullable=False),
        Column("package", String(NAME), nullable=False),
        Column("name", String(NAME), nullable=False),
        Column("exec", Text, nullable=False),
        Column("limits", Text, nullable=False),
        Column("parameters", Text, nullable=False),
        Column("annotations", Text, nullable=False),
        Column("publish", Boolean, nullable=False),
        Column("version", String(32), nullable=False),
        Column("updated", BigInteger, nullable=False),
        Column("subject", String(NAME), nullable=False, server_default=""),
    ]


actions = Table(
    "actions",
    metadata,
    *_action_columns(),
    PrimaryKeyConstraint("namespace", "package", "name"),
)

# One immutable row per deployed version. ``id`` orders versions by first
# creation, which ``updated`` cannot do (a clock may step back).
action_versions = Table(
    "action_versions",
    metadata,
    Column("id", Integer, autoincrement=True, nullable=False),
    *_action_columns(),
    PrimaryKeyConstraint("id"),
    UniqueConstraint("namespace", "package", "name", "version"),
    ForeignKeyConstraint(
        ["namespace", "package", "name"],
        ["actions.namespace", "actions.package", "actions.name"],
        ondelete="CASCADE",
    ),
)

# Activations are written far more than anything else and read back whole, so
# the record is one JSON document; the columns beside it exist to filter on.
activations = Table(
    "activations",
    metadata,
    Column("activation_id", String(32), nullable=False),
    Column("namespace", String(NAME), nullable=False),
    Column("name", String(2 * NAME + 1), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("record", Text, nullable=False),
    PrimaryKeyConstraint("activation_id"),
    Index(None, "namespace", "start"),
    Index(None, "namespace", "name", "start"),
    # Purging scans by age across every namespace.
    Index(None, "start"),
)

# Gateway routes. ``config`` is JSON: the access policy with its secrets already
# hashed, IP lists, rate limit, CORS, body limit. ``host`` is "" unless the route is
# also served on a host name; requests look routes up by it.
routes = Table(
    "routes",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("base_path", String(NAME), nullable=False),
    Column("path", String(1024), nullable=False),
    Column("method", String(16), nullable=False),
    Column("action", String(2 * NAME + 1), nullable=False),
    Column("host", String(NAME), nullable=False),
    Column("config", Text, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    PrimaryKeyConstraint("namespace", "base_path", "path", "method"),
    Index(None, "host"),
)

# A trigger's definition plus its scheduler state: next_run_at is the tick that
# replicas race to claim (compare-and-set in one UPDATE), running_until the hold
# of a run of a ``concurrency: skip`` trigger.
triggers = Table(
    "triggers",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("parameters", Text, nullable=False),
    Column("annotations", Text, nullable=False),
    Column("publish", Boolean, nullable=False),
    Column("version", String(32), nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("cron", String(NAME), nullable=True),
    Column("timezone", String(64), nullable=False),
    Column("concurrency", String(8), nullable=False),
    Column("missed", String(8), nullable=False),
    Column("next_run_at", BigInteger, nullable=True),
    Column("last_run_at", BigInteger, nullable=True),
    Column("running_until", BigInteger, nullable=True),
    PrimaryKeyConstraint("namespace", "name"),
    # Every replica polls for due ticks across namespaces.
    Index(None, "next_run_at"),
)

rules = Table(
    "rules",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("trigger", String(NAME), nullable=False),
    Column("action", String(2 * NAME + 1), nullable=False),
    Column("status", String(16), nullable=False),
    Column("annotations", Text, nullable=False),
    Column("publish", Boolean, nullable=False),
    Column("version", String(32), nullable=False),
    Column("updated", BigInteger, nullable=False),
    PrimaryKeyConstraint("namespace", "name"),
    Index(None, "namespace", "trigger"),
)

# Partial sums of activations per function and minute, for charts that outlive the
# activation records and restarts. Insert-only: readers add up the rows of a bucket.
activation_rollups = Table(
    "activation_rollups",
    metadata,
    Column("id", Integer, autoincrement=True, nullable=False),
    Column("namespace", String(NAME), nullable=False),
    Column("name", String(2 * NAME + 1), nullable=False),
    Column("bucket", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("cold", Integer, nullable=False),
    Column("duration_sum", BigInteger, nullable=False),
    Column("histogram", Text, nullable=False),
    Column("cpu_sum", BigInteger, nullable=False),
    Column("memory_max", BigInteger, nullable=False),
    PrimaryKeyConstraint("id"),
    Index(None, "namespace", "bucket"),
    Index(None, "namespace", "name", "bucket"),
    Index(None, "bucket"),
)

# A function's invoke config (retries, maximum age, backoff, onFailure) as JSON,
# validated by ``wisp.invoker.retries``; deleted with the function.
invoke_configs = Table(
    "invoke_configs",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("package", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("config", Text, nullable=False),
    Column("updated", BigInteger, nullable=False),
    PrimaryKeyConstraint("namespace", "package", "name"),
)

# Names for versions of a function (``PKG/FN:live``); deleted with the function. The
# version an alias points at is kept past retention.
action_aliases = Table(
    "action_aliases",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("package", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("alias", String(NAME), nullable=False),
    Column("version", String(32), nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("subject", String(NAME), nullable=False),
    PrimaryKeyConstraint("namespace", "package", "name", "alias"),
)

# Asynchronous activations that ran out of attempts or age, with what they were
# asked (``request``: the input, to redrive) and how the last attempt ended.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("activation_id", String(32), nullable=False),
    Column("namespace", String(NAME), nullable=False),
    Column("name", String(2 * NAME + 1), nullable=False),
    Column("version", String(32), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("request", Text, nullable=False),
    Column("response", Text, nullable=False),
    PrimaryKeyConstraint("activation_id"),
    Index(None, "namespace", "created"),
)

# Idempotency-Key claims: the primary key makes a claim atomic (insert or get), so
# concurrent invokes with one key start exactly one activation.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("key", String(255), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("activation_id", String(32), nullable=False),
    Column("created", BigInteger, nullable=False),
    PrimaryKeyConstraint("namespace", "key"),
    # Expired claims are purged across every namespace.
    Index(None, "created"),
)


# One AES-256-GCM data key per namespace, wrapped by the master key (wisp.secrets).
data_keys = Table(
    "data_keys",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("wrapped", Text, nullable=False),
    PrimaryKeyConstraint("namespace"),
)

# A namespace's named secrets: ciphertext only (bound to namespace and name), the
# plaintext's size in bytes, and when it was last set.
secrets = Table(
    "secrets",
    metadata,
    Column("namespace", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("ciphertext", Text, nullable=False),
    Column("size", Integer, nullable=False),
    Column("updated", BigInteger, nullable=False),
    PrimaryKeyConstraint("namespace", "name"),
)
