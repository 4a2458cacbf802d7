"""Allocation: a confirmed order gets a compartment (or a place in the station's queue).

Right zone, smallest size that fits, least worn first; orders of one shopper and one merchant
at one station share a reserved compartment while their size units fit (never two merchants':
each merchant's courier gets the compartment's code). An order bigger than the largest
compartment is split: L-sized parts and one for the rest, each its own booking, all booked or
none (it waits in the queue), never shared with other orders. Rows are taken with
``FOR UPDATE SKIP LOCKED`` so concurrent allocations never book one compartment twice
(SQLite ignores the clause; it serialises writers anyway).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import AssignPayload, hash_code
from edge.protocol.token import new_fallback_code
from tuanbox.crypto import PiiCipher
from tuanbox.dispatch import outbox
from tuanbox.fulfilment import alerts, codes, orders_port
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.domain import MAX_UNITS, UNITS
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

_CAPACITY = case(UNITS, value=Compartment.size)
# Compartments one order may be split across; past this it goes to the exception queue.
MAX_PARTS = 4


def split_units(units: int) -> list[int]:
    """Size units of each part of an order: as many full L compartments as it takes, then the
    rest; one part when the order fits in one compartment."""
    parts = [MAX_UNITS] * (units // MAX_UNITS)
    if units % MAX_UNITS:
        parts.append(units % MAX_UNITS)
    return parts or [units]


def allocate(
    session: Session, order: Order, *, settings: Settings, now: datetime
) -> FulfilmentOrder | None:
    """Book a compartment for a confirmed order, or queue it; idempotent per order.

    None when the order can never be allocated (an ops alert says why).
    """
    fo = session.get(FulfilmentOrder, order.id, with_for_update=True)
    if fo is not None and fo.state != "queued":
        return fo
    zone, units = orders_port.needs(session, order)
    if fo is None:
        if order.station_id is None or units > MAX_UNITS * MAX_PARTS:
            return _not_allocatable(session, order, zone, units, now)
        fo = FulfilmentOrder(
            order_id=order.id,
            user_id=order.user_id,
            station_id=order.station_id,
            zone=zone,
            units=units,
            state="queued",
            queued_at=now,
        )
        session.add(fo)
        session.flush()
    if fo.units > MAX_UNITS:
        booking = _book_split(session, fo, order.merchant_id, settings=settings, now=now)
    else:
        booking = _share(session, fo, order.merchant_id) or _book_new(
            session, fo, order.merchant_id, fo.units, settings=settings, now=now
        )
    if booking is None:
        return fo  # the station is full for this zone and size: wait in the queue
    fo.state = "booked"
    fo.booking_id = booking.id
    where = "compartments" if booking.lead_booking_id else "compartment"
    orders_port.move(session, order, "allocated", f"{where} at locker {booking.locker_id}")
    session.flush()
    return fo


def _not_allocatable(
    session: Session, order: Order, zone: str, units: int, now: datetime
) -> FulfilmentOrder | None:
    """Record why an order can never go in a compartment; ops decide (split, other station)."""
    reason = (
        "the order has no pickup station"
        if order.station_id is None
        else f"needs {units} size units, at most {MAX_PARTS} compartments of {MAX_UNITS} "
        "are split across"
    )
    alerts.open_alert(
        session,
        kind="not_allocatable",
        locker_id=None,
        compartment_id=None,
        order_id=order.id,
        detail=f"order {order.id} cannot be allocated: {reason}",
    )
    if order.station_id is None:
        return None
    fo = FulfilmentOrder(
        order_id=order.id,
        user_id=order.user_id,
        station_id=order.station_id,
        zone=zone,
        units=units,
        state="exception",
        queued_at=now,
        exception_reason=reason,
    )
    session.add(fo)
    session.flush()
    return fo


def _share(session: Session, fo: FulfilmentOrder, merchant_id: str) -> Booking | None:
    """A reserved booking of the same shopper and merchant at the same station with room left.

    Under READ COMMITTED, PostgreSQL re-checks the WHERE clause on the locked row, so two
    orders racing for the last units of one booking cannot both fit.
    """
    booking = session.scalars(
        select(Booking)
        .join(Compartment, Compartment.id == Booking.compartment_id)
        .where(
            Booking.user_id == fo.user_id,
            Booking.merchant_id == merchant_id,
            Booking.station_id == fo.station_id,
            Booking.zone == fo.zone,
            Booking.state == "reserved",
            Booking.lead_booking_id.is_(None),  # a split order's parts are its own
            Booking.units_used + fo.units <= _CAPACITY,
        )
        .order_by(Booking.id)
        .limit(1)
        .with_for_update(of=Booking)
    ).first()
    if booking is not None:
        booking.units_used += fo.units
    return booking


def _book_split(
    session: Session, fo: FulfilmentOrder, merchant_id: str, *, settings: Settings, now: datetime
) -> Booking | None:
    """Book every part of a split order, or none (savepoint); the lead booking, or None."""
    savepoint = session.begin_nested()
    parts: list[tuple[Booking, str]] = []
    for units in split_units(fo.units):
        booking = _book_new(session, fo, merchant_id, units, settings=settings, now=now)
        if booking is None:
            savepoint.rollback()
            return None
        comp = session.get(Compartment, booking.compartment_id)
        assert comp is not None  # FK
        parts.append((booking, comp.label))
    savepoint.commit()
    lead = parts[0][0]
    for booking, _label in parts:
        booking.lead_booking_id = lead.id
    lead.more_compartments = [label for _booking, label in parts[1:]]
    session.flush()
    return lead


def _book_new(
    session: Session,
    fo: FulfilmentOrder,
    merchant_id: str,
    units: int,
    *,
    settings: Settings,
    now: datetime,
) -> Booking | None:
    compartment = session.scalars(
        select(Compartment)
        .join(Locker, Locker.id == Compartment.locker_id)
        .where(
            Locker.station_id == fo.station_id,
            Compartment.zone == fo.zone,
            Compartment.state == "free",
            Compartment.flagged_mismatch.is_(False),
            units <= _CAPACITY,
        )
        .order_by(_CAPACITY, Compartment.wear_count, Compartment.id)
        .limit(1)
        .with_for_update(skip_locked=True, of=Compartment)
    ).first()
    if compartment is None:
        return None
    compartment.state = "reserved"
    ref, deposit_code = str(uuid.uuid4()), new_fallback_code(6)
    booking = Booking(
        ref=ref,
        compartment_id=compartment.id,
        locker_id=compartment.locker_id,
        station_id=fo.station_id,
        user_id=fo.user_id,
        merchant_id=merchant_id,
        zone=fo.zone,
        units_used=units,
        state="reserved",
        deposit_code_enc=codes.seal(PiiCipher(settings), ref, "deposit", deposit_code),
    )
    session.add(booking)
    session.flush()
    outbox.enqueue(
        session,
        compartment.locker_id,
        "assign",
        AssignPayload(
            order_id=booking.ref,
            compartment=compartment.label,
            deposit_code_hash=hash_code(deposit_code, compartment.locker_id),
        ),
        now=now,
        ttl_s=settings.command_ttl_s,
        ref=f"booking:{booking.id}",
    )
    return booking


def drain_queue(
    session: Session, station_id: str, *, settings: Settings, now: datetime, limit: int = 20
) -> int:
    """Allocate queued orders at a station, oldest first; return how many got a compartment."""
    queued = session.scalars(
        select(FulfilmentOrder)
        .where(FulfilmentOrder.station_id == station_id, FulfilmentOrder.state == "queued")
        .order_by(FulfilmentOrder.queued_at, FulfilmentOrder.order_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    booked = 0
    for fo in queued:
        order = orders_port.get_order(session, fo.order_id, lock=True)
        if order is None or order.status != "confirmed":
            continue
        result = allocate(session, order, settings=settings, now=now)
        if result is not None and result.state == "booked":
            booked += 1
    return booked


def queue_position(session: Session, fo: FulfilmentOrder) -> int | None:
    """1 for the next order to get a compartment at its station; None when not queued."""
    if fo.state != "queued":
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(FulfilmentOrder)
        .where(
            FulfilmentOrder.station_id == fo.station_id,
            FulfilmentOrder.state == "queued",
            FulfilmentOrder.queued_at < fo.queued_at,
        )
    )
    return int(ahead or 0) + 1


def free_compartment(
    session: Session, booking: Booking, *, reason: str, settings: Settings, now: datetime
) -> None:
    """Close a booking, free its compartment and let the station's queue move."""
    booking.state = "closed"
    booking.closed_at = now
    booking.close_reason = reason
    compartment = session.get(Compartment, booking.compartment_id, with_for_update=True)
    if compartment is not None and compartment.state in ("reserved", "occupied"):
        compartment.state = "free"
    for fo in session.scalars(
        select(FulfilmentOrder).where(FulfilmentOrder.booking_id == booking.id)
    ):
        fo.state = "closed"
    session.flush()
    drain_queue(session, booking.station_id, settings=settings, now=now)
