"""Gateway routes: the ``routes`` table.

Revision ID: 0002
Revises: 0001

Written out in full rather than from ``wisp.store.schema``, as 0001 is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "routes",
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("base_path", sa.String(256), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("action", sa.String(513), nullable=False),
        sa.Column("host", sa.String(256), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "base_path", "path", "method", name="pk_routes"),
    )
    op.create_index("ix_routes_host", "routes", ["host"])


def downgrade() -> None:
    op.drop_table("routes")
