"""Applying what lockers report (events, state snapshots, presence, acks) to the platform.

Each function runs inside the caller's transaction; the bridge commits, then acknowledges
the MQTT message, so a crash in between means redelivery, and redelivery is harmless:
events are applied once per (locker, seq), and the rest is idempotent by construction.

The locker is asked for a fresh state snapshot (a ``sync`` command) whenever the platform's
picture of it may be stale: it reconnected, its event seqs jumped, or a snapshot disagrees
with what the platform booked.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Event, StateSnapshot, Status, encode
from edge.protocol.topics import topic
from tuanbox.db.engine import settings_of
from tuanbox.dispatch import outbox
from tuanbox.dispatch.failures import record_failure
from tuanbox.dispatch.models import AppliedEvent, OutboxCommand
from tuanbox.fulfilment import alerts, lifecycle
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import compartment_by_label
from tuanbox.settings import Settings

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
    broker across a restart, may have marked it offline after it had already come back.

    Coming back this way is a reconnect like any other, so the locker is asked for its state
    here: its "online" status, read after this (by another shared bridge, or not at all), finds
    it online already and asks nothing. The sync's TTL is the session's settings'."""
    locker.last_seen_at = now
    if not locker.online:
        locker.online = True
        outbox.reschedule_locker(session, locker.id, now=now)
        ttl_s = settings_of(session).command_ttl_s
        outbox.request_sync(session, locker.id, now=now, ttl_s=ttl_s, reason="reconnect")


def heard_from_many(
    session: Session, locker_ids: Iterable[str], *, now: datetime, grain_s: float = 0.0
) -> None:
    """`heard_from` for many lockers (a batch of acks): one locking read in id order (so
    concurrent bridges never deadlock), then one UPDATE of the rows it holds, rather than one
    per locker; those found offline come online as `heard_from` brings them.

    With ``grain_s``, a locker marked online whose ``last_seen_at`` is less than that old is
    left alone (neither locked nor written): in a burst, the same lockers ack again and again,
    and their last_seen_at needs to be fresh only against locker_offline_after_s."""
    ids = sorted(set(locker_ids))
    if not ids:
        return
    query = select(Locker.id, Locker.online).where(Locker.id.in_(ids))
    if grain_s > 0:
        cutoff = now - timedelta(seconds=grain_s)
        query = query.where(
            or_(
                Locker.online.is_(False),
                Locker.last_seen_at.is_(None),
                Locker.last_seen_at < cutoff,
            )
        )
    found = session.execute(query.order_by(Locker.id).with_for_update()).all()
    if not found:
        return
    session.execute(
        update(Locker)
        .where(Locker.id.in_([locker_id for locker_id, _ in found]))
        .values(last_seen_at=now)
        .execution_options(synchronize_session=False)
    )
    for locker_id, online in found:
        if not online:
            locker = session.get(Locker, locker_id, populate_existing=True)
            if locker is not None:
                heard_from(session, locker, now=now)


def locker_heard(session: Session, locker_id: str, *, now: datetime) -> None:
    locker = session.get(Locker, locker_id, with_for_update=True)
    if locker is not None:
        heard_from(session, locker, now=now)


def event_digest(event: Event) -> str:
    """SHA-256 of what an event says (type, time, payload): every redelivery has the same."""
    body = {"type": event.type, "at": event.at.isoformat(), "payload": event.payload}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _mark_applied(session: Session, event: Event, digest: str) -> bool:
    """Insert (locker, seq) unless present; True if this call inserted it.

    ON CONFLICT DO NOTHING waits for a concurrent inserter of the same key to finish, so two
    bridges handed the same event cannot both see True.
    """
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(AppliedEvent)
        .values(
            locker_id=event.locker_id, seq=event.seq, type=event.type, at=event.at, digest=digest
        )
        .on_conflict_do_nothing(index_elements=["locker_id", "seq"])
        .returning(AppliedEvent.seq)
    )
    # RETURNING, not rowcount: drivers disagree on rowcount for skipped conflicts.
    return session.execute(stmt).first() is not None


def _seq_reused(
    session: Session, event: Event, *, applied: str, digest: str, now: datetime
) -> None:
    """A different event under a seq already applied: a locker whose counter went back (state
    restored from a backup, a replaced SD card) or a forgery. Not applied; kept as a dead letter
    with its payload, and ops alerted once per distinct event."""
    attempts, _ = record_failure(
        session,
        key=f"evt-reused:{event.locker_id}:{event.seq}:{digest[:16]}",
        topic=topic(event.locker_id, "evt"),
        locker_id=event.locker_id,
        payload=encode(event),
        error=f"SEQ_REUSED: seq {event.seq} was applied as another event "
        f"(digest {applied[:16]}, this one {digest[:16]})",
        now=now,
        dead_letter=True,
    )
    log.error("event seq reused", extra={"locker_id": event.locker_id, "seq": event.seq})
    if attempts == 1:
        alerts.open_alert(
            session,
            kind="seq_reused",
            severity="critical",
            locker_id=event.locker_id,
            compartment_id=None,
            detail=f"locker {event.locker_id} sent a {event.type} event as seq {event.seq}, "
            "which was already applied as a different event; this one was not applied",
        )


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
) -> Literal["applied", "duplicate", "reused", "unknown_locker"]:
    """Apply one locker event exactly once per (locker, seq).

    A redelivery is a duplicate; a *different* event under an applied seq is "reused": not
    applied, and reported. A seq past the next expected one means events are missing or late:
    the locker is asked for its state."""
    locker = session.get(Locker, event.locker_id, with_for_update=True)
    if locker is None:
        log.debug("event from unknown locker", extra={"locker_id": event.locker_id})
        return "unknown_locker"
    digest = event_digest(event)
    if not _mark_applied(session, event, digest):
        applied = session.scalar(
            select(AppliedEvent.digest).where(
                AppliedEvent.locker_id == locker.id, AppliedEvent.seq == event.seq
            )
        )
        # NULL: applied before digests were kept, so it cannot be told apart.
        if applied is not None and applied != digest:
            _seq_reused(session, event, applied=applied, digest=digest, now=now)
            return "reused"
        return "duplicate"
    gap = event.seq > locker.last_event_seq + 1
    locker.last_event_seq = max(locker.last_event_seq, event.seq)
    heard_from(session, locker, now=now)
    if gap:
        outbox.request_sync(
            session, locker.id, now=now, ttl_s=ctx.settings.command_ttl_s, reason="seq_gap"
        )
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


def apply_state(
    session: Session, snapshot: StateSnapshot, *, settings: Settings, now: datetime
) -> int:
    """Reconcile a locker's snapshot; return how many compartments got newly flagged.

    The platform's view is never overwritten from a snapshot: a compartment we believe free
    that the locker reports holding an item is flagged for ops (and skipped by allocation),
    because either could be wrong (a stuck sensor, a parcel put in the wrong door). Any new
    disagreement, including one the platform expects to settle by itself (a parcel booked in
    a compartment reported empty: usually the pickup event is still on its way), asks the
    locker for a fresh snapshot, at most every `locker_sync_min_interval_s`.
    """
    locker = session.get(Locker, snapshot.locker_id, with_for_update=True)
    if locker is None:
        return 0
    heard_from(session, locker, now=now)
    flagged = 0
    disagrees = False
    for reported in snapshot.compartments:
        comp = compartment_by_label(session, locker.id, reported.compartment)
        if comp is None:
            detail = f"locker reports compartment {reported.compartment} the platform lacks"
            log.warning(detail, extra={"locker_id": locker.id})
            continue
        problem, flag = None, True
        if comp.state == "free" and reported.item_present:
            problem = "the platform has it free but the locker reports an item inside"
        elif comp.state == "occupied" and not reported.item_present:
            problem, flag = "a parcel is booked in it but the locker reports it empty", False
        elif reported.out_of_service and comp.state != "out_of_service":
            problem = "the locker reports it out of service"
        if problem is None or comp.flagged_mismatch:
            continue
        disagrees = True
        if not flag:
            log.info(problem, extra={"locker_id": locker.id, "compartment": comp.label})
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
    if disagrees:
        outbox.request_sync(
            session,
            locker.id,
            now=now,
            ttl_s=settings.command_ttl_s,
            reason="state_mismatch",
            min_interval_s=settings.locker_sync_min_interval_s,
        )
    session.flush()
    return flagged


def apply_status(
    session: Session, locker_id: str, status: Status, *, settings: Settings, now: datetime
) -> bool:
    """Presence: ``online`` (with boot id and agent version) or ``offline`` (the will).

    A locker back online, or online with a new boot, is asked for its state (sync)."""
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
    rebooted = locker.boot_id != status.boot_id
    locker.online = True
    locker.boot_id = status.boot_id
    locker.last_seen_at = now
    if status.agent_version:
        locker.agent_version = status.agent_version
    if came_back:
        outbox.reschedule_locker(session, locker_id, now=now)
    if came_back or rebooted:
        outbox.request_sync(
            session, locker_id, now=now, ttl_s=settings.command_ttl_s, reason="reconnect"
        )
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


# The final acks `command_settled` raises an alert for (the others need nothing more).
SETTLED_WITH_ALERT = ("rejected", "failed")


def command_settled(session: Session, command: OutboxCommand) -> None:
    """After an ack moved a command: failures become alerts with the locker's reason."""
    if command.status not in SETTLED_WITH_ALERT:
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


def command_stalled(
    session: Session, command: OutboxCommand, *, settings: Settings, now: datetime
) -> None:
    """A command accepted and never finished in time: ask the locker for its state (unless
    the stalled command was a sync itself) and alert ops. The caller re-sends the command,
    to which the locker answers with its recorded final ack, if it has one."""
    if command.type != "sync":
        outbox.request_sync(
            session, command.locker_id, now=now, ttl_s=settings.command_ttl_s, reason="stalled"
        )
    booking = _booking_of_command(session, command)
    order_ids = _order_ids(session, booking)
    waited = timedelta(seconds=settings.command_accepted_timeout_s)
    alerts.open_alert(
        session,
        kind="command_stalled",
        severity="critical" if command.type in ("assign", "arm_pickup", "open") else "warning",
        locker_id=command.locker_id,
        compartment_id=booking.compartment_id if booking else None,
        order_id=order_ids[0] if order_ids else None,
        detail=f"{command.type} {command.id} was accepted by locker {command.locker_id} and "
        f"not finished within {waited}; asked the locker for its state",
    )
    session.flush()
