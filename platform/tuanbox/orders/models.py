"""Order rows and the append-only record of their transitions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, TimestampMixin, utcnow

# The wave table is fulfilment's; its module imports nothing of orders, so no cycle.
from tuanbox.fulfilment.models import DeliveryWave
from tuanbox.orders.domain import Awaiting, OrderKind, OrderStatus

_STATUSES = ", ".join(f"'{s.value}'" for s in OrderStatus)
_AWAITING = ", ".join(f"'{a.value}'" for a in Awaiting)


class Order(TimestampMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("qty > 0", name="qty_positive"),
        CheckConstraint("unit_price_cents >= 0", name="unit_price_nonnegative"),
        CheckConstraint("total_cents = unit_price_cents * qty", name="total_consistent"),
        CheckConstraint("paid_cents >= 0 AND refunded_cents >= 0", name="money_nonnegative"),
        CheckConstraint("refunded_cents <= paid_cents", name="refund_within_paid"),
        CheckConstraint(f"status IN ({_STATUSES})", name="status_known"),
        CheckConstraint("kind IN ('regular', 'group', 'flash')", name="kind_known"),
        # The pay-timeout scan reads only unpaid orders, oldest deadline first.
        Index("ix_orders_status_pay_deadline", "status", "pay_deadline"),
        CheckConstraint(f"awaiting IS NULL OR awaiting IN ({_AWAITING})", name="awaiting_known"),
        # The acceptance-deadline scan reads paid orders awaiting their merchant.
        Index("ix_orders_status_accept_deadline", "status", "accept_deadline"),
        # The merchant console's order list and exports, newest first (keyset on created_at,
        # id), all orders or one status (tuanbox.merchant_orders.listing).
        Index("ix_orders_merchant_created", "merchant_id", "created_at", "id"),
        Index("ix_orders_merchant_status_created", "merchant_id", "status", "created_at", "id"),
        # Coupons and points off at checkout (`tuanbox.coupons`): at least a cent is paid.
        CheckConstraint(
            "discount_cents >= 0 AND (discount_cents = 0 OR discount_cents < total_cents)",
            name="discount_within_total",
        ),
        # Delivery to the locker (`tuanbox.membership.pricing`): paid on top of the goods.
        CheckConstraint("delivery_fee_cents >= 0", name="delivery_fee_nonnegative"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    sku_id: Mapped[str] = mapped_column(ForeignKey("skus.id", ondelete="RESTRICT"), index=True)
    qty: Mapped[int] = mapped_column(BigInt)
    unit_price_cents: Mapped[int] = mapped_column(BigInt)
    total_cents: Mapped[int] = mapped_column(BigInt)
    # Taken off at checkout by coupons and points; the shopper pays total - discount.
    discount_cents: Mapped[int] = mapped_column(BigInt, default=0, server_default="0")
    # Delivery to the locker, decided at creation (0: waived for a member, over the
    # free-delivery threshold, or no fee set); the shopper pays total - discount + this.
    delivery_fee_cents: Mapped[int] = mapped_column(BigInt, default=0, server_default="0")
    paid_cents: Mapped[int] = mapped_column(BigInt, default=0)
    refunded_cents: Mapped[int] = mapped_column(BigInt, default=0)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING_PAYMENT)
    kind: Mapped[str] = mapped_column(String(10), default=OrderKind.REGULAR)
    # Owned by other features (group-buy, fulfilment); plain ids so their tables can come later.
    group_id: Mapped[str | None] = mapped_column(String(36), index=True)
    station_id: Mapped[str | None] = mapped_column(String(36), index=True)
    # True while stock_reserved on the SKU counts this order (so release/commit happen once).
    stock_held: Mapped[bool] = mapped_column(default=False)
    pay_deadline: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    picked_up_at: Mapped[datetime | None]
    # What a paid order waits for before it is confirmed (None once it moved on).
    awaiting: Mapped[str | None] = mapped_column(String(16))
    # Set when its merchant accepts orders by hand: past it, the merchant's lapse policy applies.
    accept_deadline: Mapped[datetime | None]
    # The station's delivery wave the order ships in, given when it is confirmed.
    wave_id: Mapped[str | None] = mapped_column(ForeignKey("delivery_waves.id"), index=True)
    wave: Mapped[DeliveryWave | None] = relationship()
    # Risk control holds it (`tuanbox.risk`): it is not confirmed until ops approve the review.
    risk_hold: Mapped[bool] = mapped_column(default=False, server_default=false())

    @property
    def due_cents(self) -> int:
        """What the shopper pays: the goods less coupons and points, plus delivery."""
        return self.total_cents - self.discount_cents + self.delivery_fee_cents


class OrderTransition(Base):
    __tablename__ = "order_transitions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[datetime] = mapped_column(default=utcnow)
