"""Orders: every kind reaches a locker (confirmation paths, delivery waves).

Revision ID: 0015_order_paths
Revises: 0014_locker_contract
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0015_order_paths"
down_revision: str | None = "0014_locker_contract"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
