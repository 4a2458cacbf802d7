"""Bad input: BIGINT for money and counters, wider ciphertext columns.

Revision ID: 0009_bounds
Revises: 0008_inbound_failures
Create Date: 2026-12-06
"""

from collections.abc import Sequence

revision: str = "0009_bounds"
down_revision: str | None = "0008_inbound_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
