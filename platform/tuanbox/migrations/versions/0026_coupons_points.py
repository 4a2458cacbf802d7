"""Reserved: filled in by the change that owns it.

Revision ID: 0026_coupons_points
Revises: 0025_reports
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0026_coupons_points"
down_revision: str | None = "0025_reports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
