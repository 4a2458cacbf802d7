"""Reserved: filled in by the change that owns it.

Revision ID: 0023_console
Revises: 0022_group_seats
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0023_console"
down_revision: str | None = "0022_group_seats"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
