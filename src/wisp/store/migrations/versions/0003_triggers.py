"""Triggers (with their cron schedule and scheduler state) and rules.

Revision ID: 0003
Revises: 0002

Written out in full rather than from ``wisp.store.schema``, as 0001 is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("publish", sa.Boolean, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("cron", sa.String(256), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("concurrency", sa.String(8), nullable=False),
        sa.Column("missed", sa.String(8), nullable=False),
        sa.Column("next_run_at", sa.BigInteger, nullable=True),
        sa.Column("last_run_at", sa.BigInteger, nullable=True),
        sa.Column("running_until", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("namespace", "name", name="pk_triggers"),
    )
    op.create_index("ix_triggers_next_run_at", "triggers", ["next_run_at"])
    op.create_table(
        "rules",
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("trigger", sa.String(256), nullable=False),
        sa.Column("action", sa.String(513), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("publish", sa.Boolean, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "name", name="pk_rules"),
    )
    op.create_index("ix_rules_namespace_trigger", "rules", ["namespace", "trigger"])


def downgrade() -> None:
    op.drop_table("rules")
    op.drop_table("triggers")
