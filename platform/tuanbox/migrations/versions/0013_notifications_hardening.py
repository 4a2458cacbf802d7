"""Notifications: no codes in clear.

Revision ID: 0013_notifications_hardening
Revises: 0012_auth_hardening
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0013_notifications_hardening"
down_revision: str | None = "0012_auth_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
