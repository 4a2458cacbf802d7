"""Reserved: filled in by the change that owns it.

Revision ID: 0030_recommendations
Revises: 0029_segments_experiments
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0030_recommendations"
down_revision: str | None = "0029_segments_experiments"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
