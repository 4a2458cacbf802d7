"""Reserved: filled in by the change that owns it.

Revision ID: 0028_trace_completeness
Revises: 0027_growth
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0028_trace_completeness"
down_revision: str | None = "0027_growth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
