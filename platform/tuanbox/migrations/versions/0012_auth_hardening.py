"""Accounts: access tokens revoked with the account, sign-in lockouts.

Revision ID: 0012_auth_hardening
Revises: 0011_payments_hardening
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0012_auth_hardening"
down_revision: str | None = "0011_payments_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
