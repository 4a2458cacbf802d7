"""What was sent (or, in development, put in the inbox), one row per message; never a code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, Text
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
    # Non-secret fields only; secret ones (codes) are listed under "redacted" instead.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Development inbox only: the secret fields as JSON, encrypted with the PII key under the
    # context "notification:{id}". Always NULL when the gateway sends (production).
    secrets_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
