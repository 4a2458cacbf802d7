"""Notifications: no codes in clear.

Adds `notifications.secrets_enc` (the development inbox's encrypted codes) and scrubs the
codes earlier versions stored in `payload`: each secret key is dropped and listed under
`"redacted"`. The scrubbed codes are gone for good; downgrade only drops the column.

Revision ID: 0013_notifications_hardening
Revises: 0012_auth_hardening
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_notifications_hardening"
down_revision: str | None = "0012_auth_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As tuanbox.notifications.records.SECRET_FIELDS at this revision (migrations stay frozen).
SECRET_FIELDS = ("code", "fallback_code", "deposit_code", "retrieval_code")
BATCH = 500

notifications = sa.table(
    "notifications", sa.column("id", sa.BigInteger()), sa.column("payload", sa.JSON())
)


def _scrub(conn: sa.Connection) -> None:
    # Coarse filter in SQL (works on both dialects: JSON cast to text), exact check in Python.
    text = sa.cast(notifications.c.payload, sa.Text)
    candidates = sa.or_(*(text.like(f'%"{key}"%') for key in SECRET_FIELDS))
    last = -1
    while True:
        rows = conn.execute(
            sa.select(notifications.c.id, notifications.c.payload)
            .where(candidates, notifications.c.id > last)
            .order_by(notifications.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row_id, payload in rows:
            last = row_id
            if not isinstance(payload, dict):
                continue
            found = sorted(key for key in SECRET_FIELDS if key in payload)
            if not found:
                continue
            kept = {k: v for k, v in payload.items() if k not in SECRET_FIELDS}
            kept["redacted"] = sorted({*kept.get("redacted", ()), *found})
            conn.execute(
                sa.update(notifications).where(notifications.c.id == row_id).values(payload=kept)
            )


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("secrets_enc", sa.Text(), nullable=True))
    _scrub(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("secrets_enc")
