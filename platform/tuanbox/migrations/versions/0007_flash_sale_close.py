"""Flash sales: closed_at, set when an ended sale gives its unsold units back to the SKU.

Revision ID: 0007_flash_sale_close
Revises: 0006_trace
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_flash_sale_close"
down_revision: str | None = "0006_trace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("flash_sales") as batch:
        batch.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flash_sales") as batch:
        batch.drop_column("closed_at")
