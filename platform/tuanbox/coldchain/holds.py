"""Quality holds: orders in a compartment with an excursion wait for ops to release or reject.

Holding an order moves it to ``quality_hold`` (orders' state machine) and revokes its pickup at
the locker (a ``revoke`` command through the outbox), because the locker checks pickup QR codes
offline and would otherwise still open the door. Releasing re-arms the same pickup (with a new
deadline and token expiry when the old deadline passed during the hold); rejecting cancels the
order, which refunds it in full (payments' order hook; called here too if that hook is not
registered in this process) and sends the parcel back to the merchant through the courier
retrieval flow, as for an overdue parcel (fulfilment's cancel hook).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.coldchain.errors import HoldDecidedError, HoldNotFoundError
from tuanbox.coldchain.models import Episode, QualityHold
from tuanbox.db.base import utcnow

if TYPE_CHECKING:
    from tuanbox.fulfilment.models import Booking
    from tuanbox.settings import Settings

SYSTEM = Actor(id="system:coldchain", role="system")
# Statuses of an order whose goods are (or are about to be) in the compartment.
HOLDABLE = ("ready_for_pickup", "allocated", "confirmed")


@dataclass(frozen=True)
class HeldOrder:
    order_id: str
    booking_id: int | None
    previous_status: str


def compartment_id(session: Session, locker_id: str, label: str) -> int | None:
    """The DB id of compartment ``"<board>-<lock>"`` of a locker, None if unknown."""
    from tuanbox.lockers.models import Compartment

    try:
        board, lock = (int(part) for part in label.split("-", 1))
    except ValueError:
        return None
    return session.scalar(
        select(Compartment.id).where(
            Compartment.locker_id == locker_id, Compartment.board == board, Compartment.lock == lock
        )
    )


def place_holds(
    session: Session, episode: Episode, comp_id: int | None, *, now: datetime, command_ttl_s: float
) -> list[HeldOrder]:
    """Hold every order deposited in the compartment; revoke their pickups at the locker."""
    from edge.protocol.envelopes import RevokePayload
    from tuanbox.dispatch import outbox
    from tuanbox.fulfilment.lifecycle import parts_of
    from tuanbox.fulfilment.models import Booking, FulfilmentOrder
    from tuanbox.orders.models import Order
    from tuanbox.orders.services import transition

    if comp_id is None:
        return []
    bookings = session.scalars(
        select(Booking)
        .where(Booking.compartment_id == comp_id, Booking.state == "deposited")
        .order_by(Booking.id)
    ).all()
    held: list[HeldOrder] = []
    for booking in bookings:
        order_ids = session.scalars(
            select(FulfilmentOrder.order_id)
            # A part of a split order holds the order it is part of.
            .where(FulfilmentOrder.booking_id == (booking.lead_booking_id or booking.id))
            .order_by(FulfilmentOrder.order_id)
        ).all()
        for order_id in order_ids:
            order = session.get(Order, order_id)
            if order is None or order.status not in HOLDABLE:
                continue
            previous = str(order.status)
            transition(session, order, "quality_hold", actor=SYSTEM,
                       reason=f"cold-chain excursion #{episode.id}: {episode.detail}")  # fmt: skip
            session.add(QualityHold(episode_id=episode.id, order_id=order_id,
                                    booking_id=booking.id, previous_status=previous,
                                    status="held", held_at=now))  # fmt: skip
            held.append(HeldOrder(order_id, booking.id, previous))
        # Every door of a split order: its keypad code would otherwise still open the others.
        for part in parts_of(session, booking):
            outbox.enqueue(
                session,
                part.locker_id,
                "revoke",
                RevokePayload(order_id=part.ref, compartment=_label(session, part),
                              reason="quality_hold"),
                now=now,
                ttl_s=command_ttl_s,
                ref=f"booking:{part.id}",
            )  # fmt: skip
    session.flush()
    return held


def _pending(session: Session, hold_id: int) -> QualityHold:
    hold = session.get(QualityHold, hold_id, with_for_update=True)
    if hold is None:
        raise HoldNotFoundError(f"quality hold {hold_id} does not exist")
    if hold.status != "held":
        raise HoldDecidedError(f"quality hold {hold_id} is already {hold.status}")
    return hold


def release(
    session: Session, hold_id: int, actor: Actor, note: str, *, settings: Settings
) -> QualityHold:
    """The goods are fine: back to where the order was, pickup armed again; audited.

    A hold that outlived the pickup deadline gives the shopper a full pickup period again
    (``pickup_deadline_h`` from now): the QR token's expiry moves with it, so the locker accepts
    the re-armed pickup and the shopper's page shows the new QR.
    """
    from tuanbox.fulfilment.lifecycle import arm_pickup, parts_of
    from tuanbox.fulfilment.models import Booking
    from tuanbox.lockers.domain import as_utc
    from tuanbox.orders.services import transition

    hold = _pending(session, hold_id)
    now = utcnow()
    if _taken_during_hold(session, hold):
        # The shopper already has it: releasing just completes the order.
        transition(session, hold.order_id, "completed", actor=actor,
                   reason=f"hold released after the pickup: {note}")  # fmt: skip
        _decide(session, hold, "released", actor, note, now)
        return hold
    transition(session, hold.order_id, hold.previous_status, actor=actor,
               reason=f"released after cold-chain review: {note}")  # fmt: skip
    booking = session.get(Booking, hold.booking_id) if hold.booking_id else None
    if (
        booking is not None
        and booking.state == "deposited"
        and booking.pickup_token_id
        and booking.fallback_code_hash
        and booking.pickup_deadline
    ):
        deadline = as_utc(booking.pickup_deadline)
        # Every part of a split order was revoked and shares the token (and its deadline).
        parts = parts_of(session, booking)
        if deadline <= now:
            deadline = now + timedelta(hours=settings.pickup_deadline_h)
            for part in parts:
                part.pickup_deadline = deadline
                part.token_expires_at = int(deadline.timestamp())
                part.reminder_sent_at = None
        for part in parts:
            arm_pickup(
                session,
                part,
                _label(session, part),
                token_id=booking.pickup_token_id,
                code_hash=booking.fallback_code_hash,
                valid_until=deadline,
                now=now,
                ttl_s=settings.command_ttl_s,
            )
    _decide(session, hold, "released", actor, note, now)
    return hold


def _label(session: Session, booking: Booking) -> str:
    from tuanbox.lockers.models import Compartment

    comp = session.get(Compartment, booking.compartment_id)
    assert comp is not None  # FK
    return comp.label


def reject(session: Session, hold_id: int, actor: Actor, note: str) -> QualityHold:
    """The goods are spoilt: the order is cancelled and refunded in full, and fulfilment's
    cancel hook sends the parcel back (courier retrieval code on the run sheet); audited."""
    from tuanbox.orders.services import lock_order, transition
    from tuanbox.payments.services import refund, refundable_cents

    hold = _pending(session, hold_id)
    now = utcnow()
    taken = _taken_during_hold(session, hold)
    # Goods already with the shopper cannot be cancelled: the order completes, refunded in full.
    order = transition(
        session,
        hold.order_id,
        "completed" if taken else "cancelled",
        actor=actor,
        reason=f"rejected after cold-chain excursion: {note}",
    )
    # payments refunds cancelled orders through an order hook; if that hook is not loaded
    # here the money is still owed, so make sure (the key makes it once only).
    order = lock_order(session, order.id)
    owed = refundable_cents(session, order)
    if owed > 0:
        refund(session, order, owed, f"quality hold rejected: {note}",
               key=f"order-cancelled:{order.id}")  # fmt: skip
    _decide(session, hold, "rejected", actor, note, now)
    return hold


def _taken_during_hold(session: Session, hold: QualityHold) -> bool:
    from tuanbox.orders.models import Order

    order = session.get(Order, hold.order_id)
    return order is not None and order.status == "picked_up"


def _decide(
    session: Session, hold: QualityHold, status: str, actor: Actor, note: str, now: datetime
) -> None:
    before = {"status": hold.status}
    hold.status = status
    hold.decided_at = now
    hold.decided_by = actor.id
    hold.note = note[:1000]
    action = {"released": "quality_hold.release", "rejected": "quality_hold.reject"}[status]
    record(session, actor, action, "order", hold.order_id, reason=note,
           details={"hold_id": hold.id, "episode_id": hold.episode_id},
           before=before, after={"status": status})  # fmt: skip
    session.flush()


def holds_of_episode(session: Session, episode_id: int) -> list[QualityHold]:
    return list(
        session.scalars(
            select(QualityHold).where(QualityHold.episode_id == episode_id).order_by(QualityHold.id)
        )
    )
