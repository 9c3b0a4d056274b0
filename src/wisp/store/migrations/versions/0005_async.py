"""Asynchronous work: per-function invoke configs, dead letters, idempotency keys.

Revision ID: 0005
Revises: 0004

Written out in full rather than from ``wisp.store.schema``, as 0001 is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "invoke_configs",
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("package", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "package", "name", name="pk_invoke_configs"),
    )
    op.create_table(
        "dead_letters",
        sa.Column("activation_id", sa.String(32), nullable=False),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("name", sa.String(513), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("request", sa.Text, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("activation_id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_namespace_created", "dead_letters", ["namespace", "created"])
    op.create_table(
        "idempotency_keys",
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("body_hash", sa.String(64), nullable=False),
        sa.Column("activation_id", sa.String(32), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name="pk_idempotency_keys"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("dead_letters")
    op.drop_table("invoke_configs")
