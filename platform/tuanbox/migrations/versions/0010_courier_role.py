"""Accounts: the courier role, run sheets scoped to a merchant.

Revision ID: 0010_courier_role
Revises: 0009_bounds
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0010_courier_role"
down_revision: str | None = "0009_bounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
