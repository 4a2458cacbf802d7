"""Segment tables: user tags, RFM scores per scope, named segments, pushes and recipients."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, utcnow

# The scope of platform-wide scores (a merchant's scores use the merchant id).
GLOBAL = "*"


class UserTag(Base):
    """A tag on a shopper within a merchant: set by staff (manual) or by the RFM job."""

    __tablename__ = "user_tags"
    __table_args__ = (
        CheckConstraint("source IN ('manual', 'computed')", name="source_known"),
        Index("ix_user_tags_scope_tag", "merchant_id", "tag"),
    )

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[str] = mapped_column(String(10), default="manual")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RfmScore(Base):
    """Recency, frequency and monetary quintiles (1-5, 5 best) of a buyer in a scope."""

    __tablename__ = "rfm_scores"
    __table_args__ = (
        CheckConstraint("r BETWEEN 1 AND 5 AND f BETWEEN 1 AND 5 AND m BETWEEN 1 AND 5", name="q"),
        Index("ix_rfm_scores_scope_rm", "scope", "r", "m"),
        Index("ix_rfm_scores_scope_last", "scope", "last_paid_at"),
    )

    scope: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    last_paid_at: Mapped[datetime]
    frequency: Mapped[int] = mapped_column(BigInt)
    monetary_cents: Mapped[int] = mapped_column(BigInt)
    r: Mapped[int]
    f: Mapped[int]
    m: Mapped[int]
    computed_at: Mapped[datetime]


class Segment(Base):
    """A named rule over a merchant's buyers: `{"kind": "rfm", "r_min": 4, "m_min": 4}`,
    `{"kind": "dormant", "days": 30}` or `{"kind": "tag", "tag": "vip"}`."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("merchant_id", "name", name="uq_segments_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Push(Base):
    """One send of a coupon or a message to a segment; `key` makes a re-run the same push."""

    __tablename__ = "segment_pushes"
    __table_args__ = (
        CheckConstraint("kind IN ('coupon', 'message')", name="kind_known"),
        CheckConstraint("conversion_days > 0", name="window_positive"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))
    coupon_template_id: Mapped[str | None] = mapped_column(String(36))
    message: Mapped[str | None] = mapped_column(Text)
    conversion_days: Mapped[int] = mapped_column(default=7)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PushRecipient(Base):
    """One shopper's outcome of a push: sent once (the primary key), or held by the limit."""

    __tablename__ = "segment_push_recipients"
    __table_args__ = (
        CheckConstraint("status IN ('sent', 'rate_limited', 'skipped')", name="status_known"),
        Index("ix_push_recipients_user_sent", "user_id", "sent_at"),
    )

    push_id: Mapped[str] = mapped_column(
        ForeignKey("segment_pushes.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(14))
    notification_id: Mapped[int | None] = mapped_column(BigInt)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduledPush(Base):
    """A push repeated daily at a local time of the station (e.g. 深夜食堂 at 21:00)."""

    __tablename__ = "segment_scheduled_pushes"
    __table_args__ = (
        CheckConstraint("kind IN ('coupon', 'message')", name="kind_known"),
        CheckConstraint("minute_of_day >= 0 AND minute_of_day < 1440", name="minute_range"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(80))
    segment_id: Mapped[str] = mapped_column(ForeignKey("segments.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(10))
    coupon_template_id: Mapped[str | None] = mapped_column(String(36))
    message: Mapped[str | None] = mapped_column(Text)
    minute_of_day: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
