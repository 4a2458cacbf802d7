"""Coupon templates, coupons, their ledger, and the discount each order got at checkout."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.coupons.domain import Audience, CouponKind, CouponStatus
from tuanbox.db.base import Base, BigInt, TimestampMixin, utcnow

_KINDS = ", ".join(f"'{k.value}'" for k in CouponKind)
_AUDIENCES = ", ".join(f"'{a.value}'" for a in Audience)
_STATUSES = ", ".join(f"'{s.value}'" for s in CouponStatus)


class CouponTemplate(TimestampMixin, Base):
    """What a coupon is worth and to whom; coupons are issued from it, one row each."""

    __tablename__ = "coupon_templates"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_KINDS})", name="kind_known"),
        CheckConstraint(f"audience IN ({_AUDIENCES})", name="audience_known"),
        CheckConstraint("amount_off_cents >= 0 AND threshold_cents >= 0", name="money_nonneg"),
        CheckConstraint("percent_off >= 0 AND percent_off < 100", name="percent_range"),
        CheckConstraint(
            "(kind = 'amount_off' AND amount_off_cents > 0) OR "
            "(kind = 'percent_off' AND percent_off > 0)",
            name="worth_something",
        ),
        CheckConstraint("per_user_limit > 0", name="per_user_positive"),
        CheckConstraint("total_limit IS NULL OR issued_count <= total_limit", name="within_total"),
        CheckConstraint("valid_from < valid_until", name="window_order"),
        CheckConstraint("points_cost IS NULL OR points_cost > 0", name="points_positive"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # None: the platform's own coupon, good at every merchant.
    merchant_id: Mapped[str | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    amount_off_cents: Mapped[int] = mapped_column(BigInt, default=0)
    percent_off: Mapped[int] = mapped_column(default=0)
    max_off_cents: Mapped[int | None] = mapped_column(BigInt)
    threshold_cents: Mapped[int] = mapped_column(BigInt, default=0)
    audience: Mapped[str] = mapped_column(String(16), default=Audience.ALL)
    per_user_limit: Mapped[int] = mapped_column(default=1)
    total_limit: Mapped[int | None] = mapped_column(BigInt)
    issued_count: Mapped[int] = mapped_column(BigInt, default=0)
    stackable: Mapped[bool] = mapped_column(default=False)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    # Days a coupon stays valid after it is issued (capped by valid_until); None: the window.
    valid_days: Mapped[int | None]
    # Shoppers may buy one with this many points (None: not for points).
    points_cost: Mapped[int | None] = mapped_column(BigInt)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(64))


class Coupon(Base):
    """One coupon in one shopper's wallet; `issue_key` makes issuing it idempotent."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint("(status = 'used') = (order_id IS NOT NULL)", name="used_has_order"),
        Index("ix_coupons_user_id_status", "user_id", "status"),
        Index("ix_coupons_template_id_user_id", "template_id", "user_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    template_id: Mapped[str] = mapped_column(ForeignKey("coupon_templates.id", ondelete="RESTRICT"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    issue_key: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(String(16))  # manual | rule | list | points
    status: Mapped[str] = mapped_column(String(12), default=CouponStatus.AVAILABLE)
    valid_from: Mapped[datetime]
    valid_until: Mapped[datetime]
    order_id: Mapped[str | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)


class CouponEntry(Base):
    """The coupon ledger: issued, redeemed, released, restored, expired; one row per key."""

    __tablename__ = "coupon_ledger"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    coupon_id: Mapped[str] = mapped_column(
        ForeignKey("coupons.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(12))
    order_id: Mapped[str | None] = mapped_column(String(36))
    actor_id: Mapped[str] = mapped_column(String(64))
    cents: Mapped[int] = mapped_column(BigInt, default=0)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class OrderDiscount(Base):
    """What an order got off at checkout, and how much of it a refund has given back."""

    __tablename__ = "order_discounts"
    __table_args__ = (
        CheckConstraint("status IN ('applied', 'released')", name="status_known"),
        CheckConstraint(
            "coupon_cents >= 0 AND points_cents >= 0 AND points_used >= 0", name="nonneg"
        ),
        CheckConstraint("points_returned >= 0 AND points_returned <= points_used", name="ret"),
    )

    order_id: Mapped[str] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(10), default="applied")
    version: Mapped[int] = mapped_column(default=1)
    coupon_cents: Mapped[int] = mapped_column(BigInt, default=0)
    points_used: Mapped[int] = mapped_column(BigInt, default=0)
    points_cents: Mapped[int] = mapped_column(BigInt, default=0)
    # Points given back so far on refunds (cumulative, so partial refunds add up exactly).
    points_returned: Mapped[int] = mapped_column(BigInt, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class OrderDiscountLine(Base):
    """One line (unit) of an order with its share of the discount, so a refund of some
    lines returns what the shopper paid for them, to the cent."""

    __tablename__ = "order_discount_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("coupon_cents + points_cents <= amount_cents", name="within_line"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    line_no: Mapped[int]
    amount_cents: Mapped[int] = mapped_column(BigInt)
    coupon_cents: Mapped[int] = mapped_column(BigInt)
    points_cents: Mapped[int] = mapped_column(BigInt)
    refund_id: Mapped[str | None] = mapped_column(String(36))
