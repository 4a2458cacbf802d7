"""Risk signals (keyed, windowed), the ops review queue and the orders each review holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, TimestampMixin, utcnow
from tuanbox.risk.rules import Action, Event, Key

_EVENTS = ", ".join(f"'{e.value}'" for e in Event)
_KEYS = ", ".join(f"'{k.value}'" for k in Key)
SUBJECTS = ("order", "user", "group")
STATUSES = ("open", "approved", "rejected")
_OPEN = text("status = 'open'")
SerialPk = BigInteger().with_variant(Integer(), "sqlite")


class RiskSignal(Base):
    """One key seen with one event: `(kind, value)` counted over a window by the rules.

    Values are keyed blind indexes (`tuanbox.crypto`), never an IP, device id, address or
    payment account in clear; `user` values are account ids. `ref` makes a provider event
    count once however often it is delivered (a payment failure's id)."""

    __tablename__ = "risk_signals"
    __table_args__ = (
        CheckConstraint(f"event IN ({_EVENTS})", name="event_known"),
        CheckConstraint(f"kind IN ({_KEYS})", name="kind_known"),
        UniqueConstraint("event", "kind", "ref"),
        # Every rule's count: one key's rows in a window.
        Index("ix_risk_signals_kind_value_at", "kind", "value", "at"),
        # An account's sticky keys (addresses, payment accounts) and its age of activity.
        Index("ix_risk_signals_user_id_kind", "user_id", "kind"),
        Index("ix_risk_signals_order_id", "order_id"),
        Index("ix_risk_signals_at", "at"),  # pruning past the retention
    )

    id: Mapped[int] = mapped_column(SerialPk, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    event: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    value: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(36))
    order_id: Mapped[str | None] = mapped_column(String(36))
    ref: Mapped[str | None] = mapped_column(String(120))


class RiskReview(TimestampMixin, Base):
    """A decision above the review threshold: its rules and evidence, waiting for ops.

    `subject_key` names what was decided about (`order:{id}`, `group:{id}`,
    `user:{id}:{event}`); at most one review per subject is open, and later decisions about
    it update that review (higher score, the latest hits, one more attempt)."""

    __tablename__ = "risk_reviews"
    __table_args__ = (
        CheckConstraint(f"subject_type IN {SUBJECTS}", name="subject_known"),
        CheckConstraint(f"status IN {STATUSES}", name="status_known"),
        CheckConstraint(f"action IN ('{Action.REVIEW}', '{Action.BLOCK}')", name="action_known"),
        Index(
            "uq_risk_reviews_open_subject",
            "subject_key",
            unique=True,
            postgresql_where=_OPEN,
            sqlite_where=_OPEN,
        ),
        Index("ix_risk_reviews_status_created_at", "status", "created_at"),
        Index("ix_risk_reviews_user_id_status", "user_id", "status"),
    )

    id: Mapped[int] = mapped_column(SerialPk, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[str] = mapped_column(String(36))
    subject_key: Mapped[str] = mapped_column(String(80))
    # The account decided about (none for a group: its accounts are in the evidence).
    user_id: Mapped[str | None] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(20))
    score: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(10), default="open")
    hits: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(String(500))


class RiskHold(Base):
    """An order a review holds: it is not confirmed until every review holding it is approved."""

    __tablename__ = "risk_holds"

    review_id: Mapped[int] = mapped_column(
        ForeignKey("risk_reviews.id", ondelete="CASCADE"), primary_key=True
    )
    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
