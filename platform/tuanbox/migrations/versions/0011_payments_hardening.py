"""Payments: real provider (WeChat Pay v3), refunds that fail for good.

Revision ID: 0011_payments_hardening
Revises: 0010_courier_role
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0011_payments_hardening"
down_revision: str | None = "0010_courier_role"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
