"""Reserved: filled in by the change that owns it.

Revision ID: 0025_reports
Revises: 0024_console_orders
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0025_reports"
down_revision: str | None = "0024_console_orders"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
