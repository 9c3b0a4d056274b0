"""Initial schema: namespaces, packages, actions, action versions, activations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full rather than from ``wisp.store.schema``: a migration must keep
meaning the same thing after the schema module moves on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _action_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("package", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("exec", sa.Text, nullable=False),
        sa.Column("limits", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("publish", sa.Boolean, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "namespaces",
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("uuid", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("limits", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_namespaces"),
        sa.UniqueConstraint("uuid", name="uq_namespaces_uuid"),
    )
    op.create_table(
        "packages",
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("annotations", sa.Text, nullable=False),
        sa.Column("publish", sa.Boolean, nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("namespace", "name", name="pk_packages"),
    )
    op.create_table(
        "actions",
        *_action_columns(),
        sa.PrimaryKeyConstraint("namespace", "package", "name", name="pk_actions"),
    )
    op.create_table(
        "action_versions",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        *_action_columns(),
        sa.PrimaryKeyConstraint("id", name="pk_action_versions"),
        sa.UniqueConstraint(
            "namespace",
            "package",
            "name",
            "version",
            name="uq_action_versions_namespace_package_name_version",
        ),
        sa.ForeignKeyConstraint(
            ["namespace", "package", "name"],
            ["actions.namespace", "actions.package", "actions.name"],
            name="fk_action_versions_actions",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "activations",
        sa.Column("activation_id", sa.String(32), nullable=False),
        sa.Column("namespace", sa.String(256), nullable=False),
        sa.Column("name", sa.String(513), nullable=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("activation_id", name="pk_activations"),
    )
    op.create_index("ix_activations_namespace_start", "activations", ["namespace", "start"])
    op.create_index(
        "ix_activations_namespace_name_start", "activations", ["namespace", "name", "start"]
    )
    op.create_index("ix_activations_start", "activations", ["start"])


def downgrade() -> None:
    op.drop_table("activations")
    op.drop_table("action_versions")
    op.drop_table("actions")
    op.drop_table("packages")
    op.drop_table("namespaces")
