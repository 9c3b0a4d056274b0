"""Aliases of function versions: the ``action_aliases`` table.

Revision ID: 0007
Revises: 0006

Written out in full rather than from ``wisp.store.schema``, as 0001 is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "action_aliases",
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("package", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("alias", sa.String(256), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint(
            "namespace", "package", "name", "alias", name="pk_action_aliases"
        ),
    )


def downgrade() -> None:
    op.drop_table("action_aliases")
