"""Reserved: filled in by the change that owns it.

Revision ID: 0022_group_seats
Revises: 0021_flash_reminders
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0022_group_seats"
down_revision: str | None = "0021_flash_reminders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
