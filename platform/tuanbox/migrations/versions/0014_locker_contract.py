"""Dispatch: BIGINT seq and compartment numbers, event digests, accepted-command timeouts.

Revision ID: 0014_locker_contract
Revises: 0013_notifications_hardening
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0014_locker_contract"
down_revision: str | None = "0013_notifications_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
