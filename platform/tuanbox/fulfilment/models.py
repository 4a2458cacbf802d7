"""Tables of compartment bookings, the fulfilment side of orders, and ops alerts."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, TimestampMixin, utcnow

BOOKING_STATES = ("reserved", "deposited", "returning", "closed")
FULFILMENT_STATES = ("queued", "booked", "exception", "closed")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
SEVERITIES = ("info", "warning", "critical")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Booking(TimestampMixin, Base):
    """One use of one compartment: the parcel(s) of one shopper, from reservation to empty.

    The locker only knows bookings (by ``ref``): several orders of one shopper at one station
    and one merchant may share a booking when they fit, and the merchant's courier deposits
    them together. ``merchant_id`` scopes the run sheet: the deposit and retrieval codes open
    the whole compartment, so a booking never mixes merchants (NULL only on bookings made
    before this rule that did; ops handle those).
    """

    __tablename__ = "compartment_bookings"
    __table_args__ = (
        CheckConstraint(_in("state", BOOKING_STATES), name="state"),
        Index("ix_compartment_bookings_open", "compartment_id", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ref: Mapped[str] = mapped_column(String(36), unique=True)  # "order_id" on the wire
    compartment_id: Mapped[int] = mapped_column(ForeignKey("compartments.id"), index=True)
    locker_id: Mapped[str] = mapped_column(String(64), ForeignKey("lockers.id"), index=True)
    station_id: Mapped[str] = mapped_column(String(36), ForeignKey("stations.id"))
    user_id: Mapped[str] = mapped_column(String(36), index=True)
    merchant_id: Mapped[str | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    zone: Mapped[str] = mapped_column(String(16))
    units_used: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="reserved")
    # Encrypted (`tuanbox.fulfilment.codes`): the courier's run sheet shows it. It opens only
    # this one compartment and only while the booking is reserved; the locker holds its hash.
    deposit_code_enc: Mapped[str] = mapped_column(String(200))
    pickup_token_id: Mapped[str | None] = mapped_column(String(36))
    token_issued_at: Mapped[int | None] = mapped_column(BigInteger)
    token_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    fallback_code_hash: Mapped[str | None] = mapped_column(String(64))
    deposited_at: Mapped[datetime | None] = mapped_column()
    pickup_deadline: Mapped[datetime | None] = mapped_column(index=True)
    reminder_sent_at: Mapped[datetime | None] = mapped_column()
    # Encrypted like the deposit code; shown on the courier's run sheet while the booking is
    # returning to the merchant.
    retrieval_code_enc: Mapped[str | None] = mapped_column(String(200))
    closed_at: Mapped[datetime | None] = mapped_column()
    close_reason: Mapped[str | None] = mapped_column(String(64))
    # An order bigger than one compartment is split: each part is a booking of its own (own
    # compartment, own deposit code), all pointing at the first part, the lead (itself too).
    # The order's FulfilmentOrder points at the lead, which holds the pickup token; its QR
    # opens the lead's compartment, then ``more_compartments`` in order. NULL: not split.
    lead_booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("compartment_bookings.id"), index=True
    )
    more_compartments: Mapped[list[str] | None] = mapped_column(JSON)


class FulfilmentOrder(TimestampMixin, Base):
    """The fulfilment side of one order: queued for a compartment, booked, or an exception."""

    __tablename__ = "fulfilment_orders"
    __table_args__ = (
        CheckConstraint(_in("state", FULFILMENT_STATES), name="state"),
        # The queue at a station, oldest first.
        Index("ix_fulfilment_orders_queue", "station_id", "state", "queued_at"),
    )

    order_id: Mapped[str] = mapped_column(String(36), ForeignKey("orders.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36))
    station_id: Mapped[str] = mapped_column(String(36), ForeignKey("stations.id"))
    zone: Mapped[str] = mapped_column(String(16))
    units: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="queued")
    queued_at: Mapped[datetime] = mapped_column(default=utcnow)
    booking_id: Mapped[int | None] = mapped_column(
        ForeignKey("compartment_bookings.id"), index=True
    )
    exception_reason: Mapped[str | None] = mapped_column(String(500))


class DeliveryWave(Base):
    """One daily courier run of one station (see `tuanbox.fulfilment.schedule`).

    Created when its first order is confirmed. Orders point at it (`orders.wave_id`); the
    wave job allocates their compartments once `allocate_at` has come.
    """

    __tablename__ = "delivery_waves"
    __table_args__ = (
        UniqueConstraint("station_id", "wave_date"),
        CheckConstraint("cutoff_at <= allocate_at AND allocate_at <= departs_at", name="order"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    station_id: Mapped[str] = mapped_column(String(36), ForeignKey("stations.id"), index=True)
    # The local date of the run at the station.
    wave_date: Mapped[date] = mapped_column(Date)
    cutoff_at: Mapped[datetime] = mapped_column()
    departs_at: Mapped[datetime] = mapped_column()
    allocate_at: Mapped[datetime] = mapped_column(index=True)
    # When the wave job first allocated this wave's orders (later confirmations may follow).
    allocated_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OpsAlert(Base):
    """Something a person at ops must look at, with the next step spelled out."""

    __tablename__ = "ops_alerts"
    __table_args__ = (
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
        Index("ix_ops_alerts_status_opened", "status", "opened_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(48), index=True)
    severity: Mapped[str] = mapped_column(String(10), default="warning")
    status: Mapped[str] = mapped_column(String(14), default="open")
    locker_id: Mapped[str | None] = mapped_column(String(64), index=True)
    compartment_id: Mapped[int | None] = mapped_column(Integer)
    order_id: Mapped[str | None] = mapped_column(String(36), index=True)
    detail: Mapped[str] = mapped_column(String(1000))
    next_step: Mapped[str] = mapped_column(String(500))
    note: Mapped[str | None] = mapped_column(String(1000))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(64))
