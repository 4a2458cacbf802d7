"""Tables of the command outbox, of the locker events already applied, and of inbound failures."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, BigInt, TimestampMixin, utcnow

COMMAND_STATUSES = (
    "pending", "sent", "accepted", "done", "rejected", "failed", "expired", "stalled"
)  # fmt: skip
# A command in one of these is waiting for (another) publish.
OPEN_STATUSES = ("pending", "sent")
# Accepted and never finished within the accepted timeout: the locker was asked for its state
# and ops were alerted; a late final ack still settles it.
STALLED = "stalled"


class OutboxCommand(TimestampMixin, Base):
    """One command for one locker, written in the same transaction as the change it serves."""

    __tablename__ = "outbox_commands"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in COMMAND_STATUSES) + ")", name="status"
        ),
        # The bridge's claim query: open commands whose next attempt is due, oldest first.
        Index("ix_outbox_commands_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the command id on the wire
    locker_id: Mapped[str] = mapped_column(String(64), ForeignKey("lockers.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    # Exactly the bytes published, so a retry is byte-identical to the first attempt.
    body: Mapped[str] = mapped_column(Text)
    # The business object the command serves (e.g. "booking:12"), for ops and for callbacks.
    ref: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Open: when to publish again. Accepted: when the accepted timeout runs out.
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    last_sent_at: Mapped[datetime | None] = mapped_column()
    acked_at: Mapped[datetime | None] = mapped_column()
    ack_code: Mapped[str | None] = mapped_column(String(64))
    ack_detail: Mapped[str | None] = mapped_column(String(500))
    # Enqueue order, from a PostgreSQL identity: commands due at the same instant (several
    # queued by one transaction share its clock) go out in the order they were queued.
    # SQLite (development) leaves it empty and ties fall to the row order.
    seq: Mapped[int | None] = mapped_column(BigInt, Identity(always=False), nullable=True)


class AppliedEvent(Base):
    """A locker event already applied; the primary key makes applying it twice impossible."""

    __tablename__ = "applied_events"

    locker_id: Mapped[str] = mapped_column(String(64), ForeignKey("lockers.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInt, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column()
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)
    # SHA-256 of what was applied (type, time, payload): a different event under a seq already
    # applied is told apart from a redelivery. NULL for events applied before it was kept.
    digest: Mapped[str | None] = mapped_column(String(64))


class InboundFailure(Base):
    """An inbound message that failed to apply: how often, and once given up on, a dead letter.

    Keyed by the message's identity, so redeliveries of one message share a row: an event by
    (locker, seq), anything else by topic and payload hash.
    """

    __tablename__ = "inbound_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    # No foreign key: the failing message may name a locker the platform does not know.
    locker_id: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    error: Mapped[str] = mapped_column(Text)  # of the latest failure
    attempts: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column()
    last_failed_at: Mapped[datetime] = mapped_column()
    # Set when the bridge gave up and acknowledged the message: it is then a dead letter.
    dead_lettered_at: Mapped[datetime | None] = mapped_column()
