"""Reserved: filled in by the change that owns it.

Revision ID: 0024_console_orders
Revises: 0023_console
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0024_console_orders"
down_revision: str | None = "0023_console"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
