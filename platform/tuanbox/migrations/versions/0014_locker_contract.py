"""Dispatch: BIGINT event seqs, a digest per applied event, a stalled status for commands.

Revision ID: 0014_locker_contract
Revises: 0013_notifications_hardening
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_locker_contract"
down_revision: str | None = "0013_notifications_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Event seqs are the lockers' counters: a seq of 2^31 or more no longer fits INTEGER.
# (Compartment board and lock numbers stay INTEGER: the envelope bounds them to 0-15 and 1-16.)
WIDENED = {"applied_events": "seq", "lockers": "last_event_seq"}
_STATUSES = "'pending', 'sent', 'accepted', 'done', 'rejected', 'failed', 'expired'"
_OLD = f"status IN ({_STATUSES})"
_NEW = f"status IN ({_STATUSES}, 'stalled')"


def _widen(to: sa.types.TypeEngine[int], was: sa.types.TypeEngine[int]) -> None:
    # SQLite's INTEGER is 64-bit already, and the models declare INTEGER there (BigInt).
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, column in WIDENED.items():
        op.alter_column(table, column, type_=to, existing_type=was, existing_nullable=False)


def upgrade() -> None:
    _widen(sa.BigInteger(), sa.Integer())
    op.add_column("applied_events", sa.Column("digest", sa.String(length=64), nullable=True))
    with op.batch_alter_table("outbox_commands") as batch:
        batch.drop_constraint(op.f("ck_outbox_commands_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_commands_status"), _NEW)


def downgrade() -> None:
    op.execute("UPDATE outbox_commands SET status = 'accepted' WHERE status = 'stalled'")
    with op.batch_alter_table("outbox_commands") as batch:
        batch.drop_constraint(op.f("ck_outbox_commands_status"), type_="check")
        batch.create_check_constraint(op.f("ck_outbox_commands_status"), _OLD)
    with op.batch_alter_table("applied_events") as batch:
        batch.drop_column("digest")
    _widen(sa.Integer(), sa.BigInteger())
