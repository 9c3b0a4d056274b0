"""Gateway routes and their access policies (web functions and gateway work).

Revision ID: 0002
Revises: 0001

Reserved in the chain so that work landing in parallel keeps one linear history; the
tables are added by the work named above (write them out in full here, as 0001 does).
"""

from __future__ import annotations

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
