"""Risk control: rules, scores and the ops review queue.

Revision ID: 0017_risk
Revises: 0016_audit_chain
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0017_risk"
down_revision: str | None = "0016_audit_chain"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
