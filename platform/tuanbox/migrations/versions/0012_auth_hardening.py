"""Accounts: access tokens revoked with the account, sign-in lockouts.

Revision ID: 0012_auth_hardening
Revises: 0011_payments_hardening
Create Date: 2026-12-06

Lockouts live in Redis only (counters with a lifetime); the DB gains the revocation record:
the token version access tokens carry, and when it was last bumped.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_auth_hardening"
down_revision: str | None = "0011_payments_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("token_version", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("tokens_revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index(
            batch.f("ix_users_tokens_revoked_at"), ["tokens_revoked_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index(batch.f("ix_users_tokens_revoked_at"))
        batch.drop_column("tokens_revoked_at")
        batch.drop_column("token_version")
