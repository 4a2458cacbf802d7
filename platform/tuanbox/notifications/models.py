"""What was sent (or, in development, put in the inbox), one row per message; never a code."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String, Text
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


SMS_OUTBOX_STATES = ("pending", "sent", "failed")


class SmsOutbox(Base):
    """A text decided inside a transaction, sent by the worker after it commits.

    Written in the transaction that decided it (`tuanbox.notifications.outbox.enqueue`), so a
    crash after the commit cannot lose it and a rollback takes it away; `key` (e.g.
    `pickup_ready:{order}:{token}`) is unique, so deciding the same text twice queues it once.
    The whole payload, codes included, is kept encrypted with the PII key under the context
    `sms_outbox:{key}` until the text is sent or given up, then dropped. The phone number is
    never here: it is read from the user's account when sending.
    """

    __tablename__ = "sms_outbox"
    __table_args__ = (
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in SMS_OUTBOX_STATES) + ")", name="state"
        ),
        Index("ix_sms_outbox_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    template: Mapped[str] = mapped_column(String(64))
    payload_enc: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    # Our error code of the last failed attempt (never the gateway's free text).
    last_error: Mapped[str | None] = mapped_column(String(64))
    # The `notifications` row written when the text went out.
    notification_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column()
