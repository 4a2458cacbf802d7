"""Applying what lockers report (events, state snapshots, presence, acks) to the platform.

Each function runs inside the caller's transaction; the bridge commits, then acknowledges
the MQTT message, so a crash in between means redelivery, and redelivery is harmless:
events are applied once per (locker, seq), and the rest is idempotent by construction.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Event, StateSnapshot, Status
from tuanbox.dispatch import outbox
from tuanbox.dispatch.models import AppliedEvent, OutboxCommand
from tuanbox.fulfilment import alerts, lifecycle
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import compartment_by_label

log = logging.getLogger("tuanbox.fulfilment")

OPEN_BOOKING_STATES = ("reserved", "deposited", "returning")
ALERT_EVENTS = {
    "door_left_open": "warning",
    "unlock_failed": "critical",
    "pickup_rejected": "info",
    "tamper": "critical",
    "sensor_fault": "warning",
}


def heard_from(session: Session, locker: Locker, *, now: datetime) -> None:
    """Any message proves the locker is up: a late will of this same boot, queued at the
    broker across a restart, may have marked it offline after it had already come back."""
    locker.last_seen_at = now
    if not locker.online:
        locker.online = True
        outbox.reschedule_locker(session, locker.id, now=now)


def locker_heard(session: Session, locker_id: str, *, now: datetime) -> None:
    locker = session.get(Locker, locker_id, with_for_update=True)
    if locker is not None:
        heard_from(session, locker, now=now)


def _mark_applied(session: Session, event: Event) -> bool:
    """Insert (locker, seq) unless present; True if this call inserted it.

    ON CONFLICT DO NOTHING waits for a concurrent inserter of the same key to finish, so two
    bridges handed the same event cannot both see True.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(AppliedEvent)
        .values(locker_id=event.locker_id, seq=event.seq, type=event.type, at=event.at)
        .on_conflict_do_nothing(index_elements=["locker_id", "seq"])
        .returning(AppliedEvent.seq)
    )
    # RETURNING, not rowcount: drivers disagree on rowcount for skipped conflicts.
    return session.execute(stmt).first() is not None


def _booking_for(
    session: Session, locker_id: str, event: Event
) -> tuple[Compartment | None, Booking | None]:
    label = event.payload.get("compartment")
    comp = compartment_by_label(session, locker_id, label) if isinstance(label, str) else None
    ref = event.payload.get("order_id")
    query = select(Booking).where(
        Booking.locker_id == locker_id, Booking.state.in_(OPEN_BOOKING_STATES)
    )
    if isinstance(ref, str):
        query = query.where(Booking.ref == ref)
    elif comp is not None:
        query = query.where(Booking.compartment_id == comp.id)
    else:
        return None, None
    booking = session.scalars(query.order_by(Booking.id).limit(1).with_for_update()).first()
    if comp is None and booking is not None:
        comp = session.get(Compartment, booking.compartment_id)
    return comp, booking


def apply_event(
    session: Session, event: Event, *, ctx: lifecycle.Context, now: datetime
) -> Literal["applied", "duplicate", "unknown_locker"]:
    """Apply one locker event exactly once per (locker, seq)."""
    locker = session.get(Locker, event.locker_id, with_for_update=True)
    if locker is None:
        log.debug("event from unknown locker", extra={"locker_id": event.locker_id})
        return "unknown_locker"
    if not _mark_applied(session, event):
        return "duplicate"
    locker.last_event_seq = max(locker.last_event_seq, event.seq)
    heard_from(session, locker, now=now)
    comp, booking = _booking_for(session, locker.id, event)
    if event.type == "door_opened" and comp is not None:
        comp.wear_count += 1  # wear is door cycles; the allocator prefers the least worn
    elif event.type == "deposited" and booking is not None:
        lifecycle.deposited(session, booking, ctx=ctx, now=now)
    elif event.type == "picked_up" and booking is not None:
        lifecycle.picked_up(session, booking, ctx=ctx, now=now)
    elif event.type in ALERT_EVENTS:
        orders = lifecycle.orders_of(session, booking) if booking else []
        alerts.open_alert(
            session,
            kind=event.type,
            severity=ALERT_EVENTS[event.type],
            locker_id=locker.id,
            compartment_id=comp.id if comp else None,
            order_id=orders[0].id if orders else None,
            detail=f"{event.type} at locker {locker.id} compartment "
            f"{comp.label if comp else '?'} (seq {event.seq}): {event.payload}",
        )
    elif event.type in ("deposited", "picked_up"):
        log.warning("event for no open booking", extra={"locker_id": locker.id, "seq": event.seq})
    session.flush()
    return "applied"


def apply_state(session: Session, snapshot: StateSnapshot, *, now: datetime) -> int:
    """Reconcile a locker's snapshot; return how many compartments got newly flagged.

    The platform's view is never overwritten from a snapshot: a compartment we believe free
    that the locker reports holding an item is flagged for ops (and skipped by allocation),
    because either could be wrong (a stuck sensor, a parcel put in the wrong door).
    """
    locker = session.get(Locker, snapshot.locker_id, with_for_update=True)
    if locker is None:
        return 0
    heard_from(session, locker, now=now)
    flagged = 0
    for reported in snapshot.compartments:
        comp = compartment_by_label(session, locker.id, reported.compartment)
        if comp is None:
            detail = f"locker reports compartment {reported.compartment} the platform lacks"
            log.warning(detail, extra={"locker_id": locker.id})
            continue
        problem = None
        if comp.state == "free" and reported.item_present:
            problem = "the platform has it free but the locker reports an item inside"
        elif reported.out_of_service and comp.state != "out_of_service":
            problem = "the locker reports it out of service"
        if problem is None or comp.flagged_mismatch:
            continue
        comp.flagged_mismatch = True
        comp.flag_detail = problem
        flagged += 1
        alerts.open_alert(
            session,
            kind="state_mismatch",
            locker_id=locker.id,
            compartment_id=comp.id,
            detail=f"compartment {comp.label} of locker {locker.id}: {problem}",
        )
    session.flush()
    return flagged


def apply_status(session: Session, locker_id: str, status: Status, *, now: datetime) -> bool:
    """Presence: ``online`` (with boot id and agent version) or ``offline`` (the will)."""
    locker = session.get(Locker, locker_id, with_for_update=True)
    if locker is None:
        return False
    if status.state == "offline":
        # A late will of an earlier boot must not mark a locker that has since come back.
        if locker.boot_id is not None and status.boot_id != locker.boot_id:
            return False
        locker.online = False
        session.flush()
        return True
    came_back = not locker.online
    locker.online = True
    locker.boot_id = status.boot_id
    locker.last_seen_at = now
    if status.agent_version:
        locker.agent_version = status.agent_version
    if came_back:
        outbox.reschedule_locker(session, locker_id, now=now)
    session.flush()
    return True


def _booking_of_command(session: Session, command: OutboxCommand) -> Booking | None:
    if command.ref and command.ref.startswith("booking:"):
        return session.get(Booking, int(command.ref.split(":", 1)[1]))
    return None


def _order_ids(session: Session, booking: Booking | None) -> list[str]:
    if booking is None:
        return []
    return list(
        session.scalars(
            select(FulfilmentOrder.order_id).where(FulfilmentOrder.booking_id == booking.id)
        )
    )


def command_settled(session: Session, command: OutboxCommand) -> None:
    """After an ack moved a command: failures become alerts with the locker's reason."""
    if command.status not in ("rejected", "failed"):
        return
    booking = _booking_of_command(session, command)
    order_ids = _order_ids(session, booking)
    alerts.open_alert(
        session,
        kind="unlock_failed" if command.type == "open" else "command_rejected",
        severity="critical" if command.type in ("assign", "arm_pickup", "open") else "warning",
        locker_id=command.locker_id,
        compartment_id=booking.compartment_id if booking else None,
        order_id=order_ids[0] if order_ids else None,
        detail=f"{command.type} {command.id} {command.status} by locker {command.locker_id}: "
        f"{command.ack_code} {command.ack_detail or ''}".strip(),
    )


def command_expired(session: Session, command: OutboxCommand) -> None:
    """A command nobody acknowledged in time: the orders it served go to the exception queue."""
    booking = _booking_of_command(session, command)
    order_ids = _order_ids(session, booking)
    reason = f"{command.type} command to locker {command.locker_id} expired unacknowledged"
    if booking is not None and command.type == "assign":
        for fo in session.scalars(
            select(FulfilmentOrder).where(FulfilmentOrder.booking_id == booking.id)
        ):
            fo.state = "exception"
            fo.exception_reason = reason
    alerts.open_alert(
        session,
        kind="command_expired",
        severity="critical" if command.type in ("assign", "arm_pickup") else "warning",
        locker_id=command.locker_id,
        compartment_id=booking.compartment_id if booking else None,
        order_id=order_ids[0] if order_ids else None,
        detail=f"{reason} after {command.attempts} attempt(s) (command {command.id})",
    )
    session.flush()
