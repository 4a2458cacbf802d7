"""Return requests; the order carries the headline status, this row the details."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, TimestampMixin


class ReturnRequest(TimestampMixin, Base):
    __tablename__ = "return_requests"
    __table_args__ = (
        CheckConstraint("method IN ('locker', 'courier')", name="method_known"),
        CheckConstraint(
            "status IN ('requested', 'dropped_off', 'received', 'refunded', 'withdrawn')",
            name="status_known",
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    method: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), default="requested")
    reason: Mapped[str] = mapped_column(String(500), default="")
    # Filled by fulfilment when the return goes through a locker compartment.
    station_id: Mapped[str | None] = mapped_column(String(36))
    courier_tracking: Mapped[str | None] = mapped_column(String(100))
    dropped_off_at: Mapped[datetime | None]
    received_at: Mapped[datetime | None]
    refund_id: Mapped[str | None] = mapped_column(String(36))
