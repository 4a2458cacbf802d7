"""Audit: hash-chained, append-only audit log with anchored chain heads.

Revision ID: 0016_audit_chain
Revises: 0015_order_paths
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0016_audit_chain"
down_revision: str | None = "0015_order_paths"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
