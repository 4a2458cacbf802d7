"""What happens to a booking after allocation: deposit, pickup, reminder, return to merchant."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import ArmPickupPayload, RevokePayload, hash_code
from edge.protocol.token import new_fallback_code
from tuanbox.crypto import PiiCipher
from tuanbox.dispatch import outbox
from tuanbox.fulfilment import alerts, codes, orders_port, pickup
from tuanbox.fulfilment.allocation import free_compartment
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Compartment
from tuanbox.notifications.services import notify
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

# How long the courier's retrieval code stays valid once a parcel goes back to the merchant.
RETRIEVAL_VALIDITY = timedelta(hours=72)


@dataclass(frozen=True)
class Context:
    """What lifecycle use cases need from the composition root."""

    settings: Settings
    signing_key: Ed25519PrivateKey


def parts_of(session: Session, booking: Booking) -> list[Booking]:
    """Every booking of a split order, the lead first; just ``booking`` when not split."""
    if booking.lead_booking_id is None:
        return [booking]
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.lead_booking_id == booking.lead_booking_id)
            .order_by(Booking.id)
            .with_for_update()
        )
    )


def orders_of(session: Session, booking: Booking) -> list[Order]:
    """The orders in a booking (for a part of a split order: the order it is part of)."""
    ids = session.scalars(
        select(FulfilmentOrder.order_id)
        .where(FulfilmentOrder.booking_id == (booking.lead_booking_id or booking.id))
        .order_by(FulfilmentOrder.order_id)
    ).all()
    return [o for o in (orders_port.get_order(session, i, lock=True) for i in ids) if o]


def _compartment(session: Session, booking: Booking) -> Compartment:
    comp = session.get(Compartment, booking.compartment_id, with_for_update=True)
    assert comp is not None  # FK
    return comp


def arm_pickup(
    session: Session,
    booking: Booking,
    compartment: str,
    *,
    token_id: str,
    code_hash: str,
    valid_until: datetime,
    now: datetime,
    ttl_s: float,
) -> None:
    """Queue the command that lets the locker open `compartment` offline for this booking."""
    outbox.enqueue(
        session,
        booking.locker_id,
        "arm_pickup",
        ArmPickupPayload(
            order_id=booking.ref,
            compartment=compartment,
            token_id=token_id,
            fallback_code_hash=code_hash,
            valid_until=valid_until,
        ),
        now=now,
        ttl_s=ttl_s,
        ref=f"booking:{booking.id}",
    )


def deposited(session: Session, booking: Booking, *, ctx: Context, now: datetime) -> bool:
    """The courier closed the door on the parcel: arm the pickup and tell the shopper.

    A split order is ready once its last part is in: then every part is armed with the lead's
    one token (its QR opens them all, in order; the keypad code opens one door per entry).
    """
    if booking.state != "reserved":
        return False
    booking.state = "deposited"
    booking.deposited_at = now
    _compartment(session, booking).state = "occupied"
    group = parts_of(session, booking)
    if any(part.state == "reserved" for part in group):
        session.flush()
        return True  # more parts of this split order are still to come
    lead = group[0]
    deadline = now + timedelta(hours=ctx.settings.pickup_deadline_h)
    code = pickup.issue(lead, now=now, valid_until=deadline, key=ctx.signing_key)
    assert lead.pickup_token_id and lead.fallback_code_hash
    labels = []
    for part in group:
        comp = _compartment(session, part)
        labels.append(comp.label)
        part.pickup_token_id, part.fallback_code_hash = (
            lead.pickup_token_id,
            lead.fallback_code_hash,
        )
        part.token_issued_at, part.token_expires_at = lead.token_issued_at, lead.token_expires_at
        part.pickup_deadline = deadline
        arm_pickup(
            session,
            part,
            comp.label,
            token_id=lead.pickup_token_id,
            code_hash=lead.fallback_code_hash,
            valid_until=deadline,
            now=now,
            ttl_s=ctx.settings.command_ttl_s,
        )
    orders = orders_of(session, lead)
    for order in orders:
        orders_port.move(session, order, "ready_for_pickup", "deposited in the locker")
    details: dict[str, object] = {
        "order_ids": [o.id for o in orders],
        "locker_id": lead.locker_id,
        "compartment": labels[0],
        "fallback_code": code,
        "qr_path": f"/api/v1/orders/{orders[0].id}/pickup-qr.png" if orders else None,
        "pickup_deadline": deadline.isoformat(),
    }
    if len(labels) > 1:
        details["compartments"] = labels
    notify(
        session,
        lead.user_id,
        "pickup_ready",
        details,
        # The code reaches the shopper through the configured channel, never our tables.
        settings=ctx.settings,
        # One text per order and pickup token: a deposit seen twice queues it once.
        key=f"pickup_ready:{orders[0].id if orders else lead.ref}:{lead.pickup_token_id}",
    )
    session.flush()
    return True


def picked_up(session: Session, booking: Booking, *, ctx: Context, now: datetime) -> bool:
    """The compartment was emptied by the shopper (or by the courier on a return)."""
    if booking.state == "reserved":
        # The deposit event is late or lost (events may arrive out of order): the parcel
        # was evidently there, so settle the deposit first.
        deposited(session, booking, ctx=ctx, now=now)
    if booking.state == "deposited":
        if any(p.state == "deposited" for p in parts_of(session, booking) if p.id != booking.id):
            # One part of a split order emptied: the order is done with its last part.
            free_compartment(session, booking, reason="picked_up", settings=ctx.settings, now=now)
            return True
        for order in orders_of(session, booking):
            if order.status == "quality_hold":
                _held_order_taken(session, booking, order, now=now)
                continue
            orders_port.move(session, order, "picked_up", "taken from the locker")
            order.picked_up_at = now
            orders_port.move(session, order, "completed", "picked up at the locker")
        notify(session, booking.user_id, "picked_up", {"locker_id": booking.locker_id})
        free_compartment(session, booking, reason="picked_up", settings=ctx.settings, now=now)
        return True
    if booking.state == "returning":
        free_compartment(
            session, booking, reason="returned_to_merchant", settings=ctx.settings, now=now
        )
        return True
    return False


def _held_order_taken(session: Session, booking: Booking, order: Order, *, now: datetime) -> None:
    """The parcel left while on quality hold (the revoke had not reached the locker yet).

    What happened in the world is recorded as it is; completing the order stays with the
    ops decision on the hold (release completes it, reject refunds it)."""
    orders_port.move(session, order, "picked_up", "taken from the locker while on quality hold")
    order.picked_up_at = now
    alerts.open_alert(
        session,
        kind="held_order_picked_up",
        severity="critical",
        locker_id=booking.locker_id,
        compartment_id=booking.compartment_id,
        order_id=order.id,
        detail=f"order {order.id} was picked up while on a cold-chain quality hold",
        next_step="contact the shopper, then release the hold (goods fine) or reject it "
        "(refund in full) on the alert page",
    )


def send_reminders(session: Session, *, ctx: Context, now: datetime) -> int:
    """Remind shoppers whose pickup deadline is near (once per booking)."""
    horizon = now + timedelta(hours=ctx.settings.pickup_reminder_before_h)
    due = session.scalars(
        select(Booking)
        .where(
            Booking.state == "deposited",
            Booking.reminder_sent_at.is_(None),
            Booking.pickup_deadline <= horizon,
            Booking.pickup_deadline > now,
        )
        .with_for_update(skip_locked=True)
    ).all()
    for booking in due:
        booking.reminder_sent_at = now
        notify(
            session,
            booking.user_id,
            "pickup_reminder",
            {
                "locker_id": booking.locker_id,
                "pickup_deadline": booking.pickup_deadline.isoformat()
                if booking.pickup_deadline
                else None,
            },
        )
    session.flush()
    return len(due)


def start_return(
    session: Session, booking: Booking, *, settings: Settings, reason: str, now: datetime
) -> None:
    """Revoke the shopper's pickup and arm a courier retrieval code for a deposited parcel."""
    comp = _compartment(session, booking)
    ref = f"booking:{booking.id}"
    outbox.enqueue(
        session,
        booking.locker_id,
        "revoke",
        RevokePayload(order_id=booking.ref, compartment=comp.label, reason=reason),
        now=now,
        ttl_s=settings.command_ttl_s,
        ref=ref,
    )
    retrieval_code = new_fallback_code(6)
    booking.retrieval_code_enc = codes.seal(
        PiiCipher(settings), booking.ref, "retrieval", retrieval_code
    )
    booking.state = "returning"
    booking.pickup_token_id = str(uuid.uuid4())
    arm_pickup(
        session,
        booking,
        comp.label,
        token_id=booking.pickup_token_id,
        code_hash=hash_code(retrieval_code, booking.locker_id),
        valid_until=now + RETRIEVAL_VALIDITY,
        now=now,
        ttl_s=settings.command_ttl_s,
    )


def return_overdue(session: Session, *, ctx: Context, now: datetime) -> int:
    """Past the deadline: revoke the shopper's pickup and arm a courier retrieval code."""
    overdue = session.scalars(
        select(Booking)
        .where(Booking.state == "deposited", Booking.pickup_deadline <= now)
        .with_for_update(skip_locked=True)
    ).all()
    returned = 0
    for booking in overdue:
        orders = orders_of(session, booking)
        if any(o.status == "quality_hold" for o in orders):
            # Ops decide first: a release gives a new deadline, a reject returns the parcel.
            continue
        returned += 1
        start_return(session, booking, settings=ctx.settings, reason="pickup_deadline", now=now)
        for order in orders:
            orders_port.move(
                session, order, "expired", "not picked up before the deadline; back to merchant"
            )
        notify(session, booking.user_id, "pickup_expired", {"locker_id": booking.locker_id})
    session.flush()
    return returned


def release_cancelled(
    session: Session, order_id: str, *, settings: Settings, now: datetime
) -> None:
    """A cancelled order gives its share of a compartment back.

    Still reserved: its units are freed, and the last order of a booking frees the
    compartment (revoking the deposit code). Already deposited: the parcel goes back to the
    merchant like an overdue one.
    """
    fo = session.get(FulfilmentOrder, order_id, with_for_update=True)
    if fo is None or fo.state == "closed":
        return
    booking = session.get(Booking, fo.booking_id, with_for_update=True) if fo.booking_id else None
    fo.state = "closed"
    if booking is None:
        return
    others = session.scalars(
        select(FulfilmentOrder).where(
            FulfilmentOrder.booking_id == booking.id,
            FulfilmentOrder.order_id != order_id,
            FulfilmentOrder.state != "closed",
        )
    ).all()
    if booking.state == "reserved":
        booking.units_used -= fo.units
    if not others:
        # Every part of a split order goes (never shared, so no others).
        for part in parts_of(session, booking):
            _give_back(session, part, settings=settings, now=now)
    session.flush()


def _give_back(session: Session, booking: Booking, *, settings: Settings, now: datetime) -> None:
    """A booking no order needs any more: reserved, its compartment is freed (deposit code
    revoked); deposited, the parcel goes back to the merchant."""
    if booking.state == "reserved":
        comp = _compartment(session, booking)
        outbox.enqueue(
            session,
            booking.locker_id,
            "revoke",
            RevokePayload(order_id=booking.ref, compartment=comp.label, reason="order_cancelled"),
            now=now,
            ttl_s=settings.command_ttl_s,
            ref=f"booking:{booking.id}",
        )
        free_compartment(session, booking, reason="cancelled", settings=settings, now=now)
    elif booking.state == "deposited":
        start_return(session, booking, settings=settings, reason="order_cancelled", now=now)
