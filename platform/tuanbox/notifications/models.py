"""What would have been sent (development adapters) or was sent, one row per message."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, utcnow


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10))  # sms | app
    user_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # For SMS before an account exists: the phone's blind index, never the number itself.
    recipient_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    template: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
