"""Ops use cases: the locker overview, the courier's run sheet, remote opens (audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import OpenPayload
from tuanbox.audit.services import Actor, record
from tuanbox.crypto import PiiCipher
from tuanbox.dispatch import outbox
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.errors import InvalidInputError
from tuanbox.fulfilment import codes
from tuanbox.fulfilment.models import Booking, FulfilmentOrder, OpsAlert
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import get_compartment, get_locker, is_stale
from tuanbox.orders.models import Order
from tuanbox.settings import Settings


def _counts(session: Session, query: Select[Any, Any]) -> dict[str, int]:
    return {key: int(count) for key, count in session.execute(query)}


@dataclass(frozen=True)
class LockerView:
    id: str
    station_id: str
    online: bool
    stale: bool  # says online but silent for longer than locker_offline_after_s
    last_seen_at: datetime | None
    agent_version: str | None
    boot_id: str | None
    open_alerts: int
    pending_commands: int
    flagged_compartments: int


def locker_overview(
    session: Session, *, now: datetime, offline_after: timedelta
) -> list[LockerView]:
    alerts = _counts(
        session,
        select(OpsAlert.locker_id, func.count())
        .where(OpsAlert.status != "resolved", OpsAlert.locker_id.is_not(None))
        .group_by(OpsAlert.locker_id),
    )
    pending = _counts(
        session,
        select(OutboxCommand.locker_id, func.count())
        .where(OutboxCommand.status.in_(("pending", "sent")))
        .group_by(OutboxCommand.locker_id),
    )
    flagged = _counts(
        session,
        select(Compartment.locker_id, func.count())
        .where(Compartment.flagged_mismatch.is_(True))
        .group_by(Compartment.locker_id),
    )
    return [
        LockerView(
            id=locker.id,
            station_id=locker.station_id,
            online=locker.online,
            stale=locker.online and is_stale(locker, now, offline_after),
            last_seen_at=locker.last_seen_at,
            agent_version=locker.agent_version,
            boot_id=locker.boot_id,
            open_alerts=alerts.get(locker.id, 0),
            pending_commands=pending.get(locker.id, 0),
            flagged_compartments=flagged.get(locker.id, 0),
        )
        for locker in session.scalars(select(Locker).order_by(Locker.id))
    ]


@dataclass(frozen=True)
class RunSheetLine:
    compartment: str
    size: str
    zone: str
    action: str  # "deposit" (bring the parcel) or "retrieve" (take it back to the merchant)
    code: str
    booking_ref: str
    order_ids: list[str]


def run_sheet(
    session: Session, locker_id: str, *, merchant_id: str | None, settings: Settings
) -> list[RunSheetLine]:
    """What a courier does at this locker: codes per compartment, in door order.

    The codes are stored encrypted (`tuanbox.fulfilment.codes`) and decrypted here only for
    the lines the caller may see.

    ``merchant_id`` set: only that merchant's bookings (its staff and couriers); None: every
    booking (ops). A code opens the whole compartment, so a line holding any other
    merchant's order is left out of a merchant's sheet rather than trimmed.
    """
    get_locker(session, locker_id)
    query = (
        select(Booking, Compartment)
        .join(Compartment, Compartment.id == Booking.compartment_id)
        .where(Booking.locker_id == locker_id, Booking.state.in_(("reserved", "returning")))
        .order_by(Compartment.board, Compartment.lock)
    )
    if merchant_id is not None:
        query = query.where(Booking.merchant_id == merchant_id)
    cipher = PiiCipher(settings)
    lines = []
    for booking, comp in session.execute(query).all():
        owners = session.execute(
            select(FulfilmentOrder.order_id, Order.merchant_id)
            .join(Order, Order.id == FulfilmentOrder.order_id)
            .where(FulfilmentOrder.booking_id == booking.id)
            .order_by(FulfilmentOrder.queued_at, FulfilmentOrder.order_id)
        ).all()
        if merchant_id is not None and any(owner != merchant_id for _, owner in owners):
            continue
        retrieving = booking.state == "returning"
        if retrieving:
            sealed = booking.retrieval_code_enc
            code = codes.reveal(cipher, booking.ref, "retrieval", sealed) if sealed else ""
        else:
            code = codes.reveal(cipher, booking.ref, "deposit", booking.deposit_code_enc)
        lines.append(
            RunSheetLine(
                compartment=comp.label,
                size=comp.size,
                zone=comp.zone,
                action="retrieve" if retrieving else "deposit",
                code=code,
                booking_ref=booking.ref,
                order_ids=[order_id for order_id, _ in owners],
            )
        )
    return lines


def remote_open(
    session: Session,
    *,
    locker_id: str,
    compartment_id: int,
    actor: Actor,
    reason: str,
    settings: Settings,
    now: datetime,
) -> OutboxCommand:
    """Queue an `open` command for one door; audited with the operator and the reason."""
    if not reason.strip():
        raise InvalidInputError("a reason is required to open a compartment remotely")
    get_locker(session, locker_id)
    comp = get_compartment(session, locker_id, compartment_id)
    command = outbox.enqueue(
        session,
        locker_id,
        "open",
        OpenPayload(compartment=comp.label, reason=reason[:200], operator=actor.id[:200]),
        now=now,
        # An open that arrives much later surprises whoever stands at the locker: keep it short.
        ttl_s=min(settings.command_ttl_s, 300),
        ref=f"compartment:{comp.id}",
    )
    record(
        session,
        actor,
        "locker.remote_open",
        "compartment",
        str(comp.id),
        reason=reason,
        details={"locker_id": locker_id, "compartment": comp.label, "command_id": command.id},
        # The door's state moves when the locker reports it; what changed here is the queue.
        before={"state": comp.state, "open_command": None},
        after={"state": comp.state, "open_command": command.id},
    )
    return command
