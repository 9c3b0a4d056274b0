"""Time-bucketed activation rollups for the console charts.

Revision ID: 0004
Revises: 0003

Written out in full rather than from ``wisp.store.schema``, as 0001 is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "activation_rollups",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("name", sa.String(513), nullable=False),
        sa.Column("bucket", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("cold", sa.Integer, nullable=False),
        sa.Column("duration_sum", sa.BigInteger, nullable=False),
        sa.Column("histogram", sa.Text, nullable=False),
        sa.Column("cpu_sum", sa.BigInteger, nullable=False),
        sa.Column("memory_max", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_activation_rollups"),
    )
    op.create_index(
        "ix_activation_rollups_namespace_bucket", "activation_rollups", ["namespace", "bucket"]
    )
    op.create_index(
        "ix_activation_rollups_namespace_name_bucket",
        "activation_rollups",
        ["namespace", "name", "bucket"],
    )
    op.create_index("ix_activation_rollups_bucket", "activation_rollups", ["bucket"])


def downgrade() -> None:
    op.drop_table("activation_rollups")
