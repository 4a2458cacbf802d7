"""Reserved: filled in by the change that owns it.

Revision ID: 0029_segments_experiments
Revises: 0028_trace_completeness
Create Date: 2026-12-07
"""

from collections.abc import Sequence

revision: str = "0029_segments_experiments"
down_revision: str | None = "0028_trace_completeness"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
