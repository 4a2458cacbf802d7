"""Applying locker messages: alerts with next steps, presence and late wills, stale lockers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import Event, Status, SyncPayload
from tests.platform.fulfilment.fx import (
    confirm,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.dispatch import outbox
from tuanbox.fulfilment import inbound, lifecycle, pickup
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.settings import Settings


def _event(locker_id: str, seq: int, type: str, **payload: object) -> Event:
    return Event(locker_id=locker_id, seq=seq, type=type, at=datetime.now(UTC), payload=payload)  # type: ignore[arg-type]


def test_door_unlock_and_pickup_problems_open_alerts_with_next_steps(
    db_session: Session, settings: Settings
) -> None:
    bind_settings(db_session, settings)
    ctx = lifecycle.Context(settings, pickup.load_signing_key(settings))
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")])
    order = make_order(
        db_session, user=make_shopper(db_session), sku=make_sku(db_session), station_id=station.id
    )
    confirm(db_session, order)
    now = datetime.now(UTC)
    events = [
        _event(locker.id, 1, "door_left_open", compartment="0-1", open_seconds=120),
        _event(locker.id, 2, "unlock_failed", compartment="0-1", code="LOCK_STUCK"),
        _event(locker.id, 3, "pickup_rejected", reason="TOKEN_USED"),
    ]
    for event in events:
        assert inbound.apply_event(db_session, event, ctx=ctx, now=now) == "applied"
    assert inbound.apply_event(db_session, events[0], ctx=ctx, now=now) == "duplicate"
    alerts = db_session.scalars(select(OpsAlert).order_by(OpsAlert.id)).all()
    assert [(a.kind, a.severity) for a in alerts] == [
        ("door_left_open", "warning"),
        ("unlock_failed", "critical"),
        ("pickup_rejected", "info"),
    ]
    assert all(a.next_step and a.locker_id == locker.id for a in alerts)
    assert alerts[0].order_id == order.id and alerts[0].compartment_id == locker.compartments[0].id
    assert alerts[2].compartment_id is None  # the scanner does not know which door was meant
    unknown = _event("no-such-locker", 1, "door_opened", compartment="0-1")
    assert inbound.apply_event(db_session, unknown, ctx=ctx, now=now) == "unknown_locker"


def test_presence_late_will_and_rescheduling(db_session: Session, settings: Settings) -> None:
    locker, _ = make_locker(db_session, make_station(db_session).id, [CompartmentSpec(0, 1, "S")])
    now = datetime.now(UTC)
    cmd = outbox.enqueue(db_session, locker.id, "sync", SyncPayload(), now=now, ttl_s=600)
    cmd.next_attempt_at = now + timedelta(minutes=5)  # pretend it was tried and is backing off

    def status(state: str, boot: str) -> Status:
        return Status(state=state, boot_id=boot, at=now, agent_version="1.2.3")  # type: ignore[arg-type]

    assert inbound.apply_status(
        db_session, locker.id, status("online", "boot-1"), settings=settings, now=now
    )
    assert locker.online and locker.agent_version == "1.2.3" and locker.last_seen_at == now
    assert cmd.next_attempt_at == now  # back online: waiting commands go out at once
    assert inbound.apply_status(
        db_session, locker.id, status("online", "boot-2"), settings=settings, now=now
    )
    # The will of the previous boot arrives late: ignored.
    assert not inbound.apply_status(
        db_session, locker.id, status("offline", "boot-1"), settings=settings, now=now
    )
    assert locker.online
    assert inbound.apply_status(
        db_session, locker.id, status("offline", "boot-2"), settings=settings, now=now
    )
    assert not locker.online
    # Any message proves it is up again (a stale will may have arrived after its comeback).
    inbound.locker_heard(db_session, locker.id, now=now + timedelta(seconds=1))
    assert locker.online
