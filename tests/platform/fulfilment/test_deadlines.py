"""Pickup deadline: one reminder before it, then return to merchant with a retrieval code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import decode_command, hash_code
from tests.platform.fulfilment.fx import (
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment import lifecycle, ops, pickup
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.notifications.models import Notification
from tuanbox.settings import Settings


def test_reminder_then_return_to_merchant(db_session: Session, settings: Settings) -> None:
    bind_settings(db_session, settings)
    ctx = lifecycle.Context(settings, pickup.load_signing_key(settings))
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")])
    shopper = make_shopper(db_session)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session), station_id=station.id)
    confirm(db_session, order)
    booking = db_session.scalars(select(Booking)).one()
    t0 = datetime.now(UTC)
    lifecycle.deposited(db_session, booking, ctx=ctx, now=t0)
    assert booking.pickup_deadline == t0 + timedelta(hours=settings.pickup_deadline_h)

    early = t0 + timedelta(hours=settings.pickup_deadline_h - settings.pickup_reminder_before_h - 1)
    assert lifecycle.send_reminders(db_session, ctx=ctx, now=early) == 0
    near = t0 + timedelta(hours=settings.pickup_deadline_h - 1)
    assert lifecycle.send_reminders(db_session, ctx=ctx, now=near) == 1
    assert lifecycle.send_reminders(db_session, ctx=ctx, now=near) == 0  # once only
    assert lifecycle.return_overdue(db_session, ctx=ctx, now=near) == 0

    late = t0 + timedelta(hours=settings.pickup_deadline_h, minutes=1)
    assert lifecycle.return_overdue(db_session, ctx=ctx, now=late) == 1
    assert order.status == "expired" and booking.state == "returning"
    commands = db_session.scalars(
        select(OutboxCommand).order_by(OutboxCommand.created_at, OutboxCommand.id)
    ).all()
    types = [c.type for c in commands]
    assert types.count("revoke") == 1 and types.count("arm_pickup") == 2
    arms = [decode_command(c.body) for c in commands if c.type == "arm_pickup"]
    retrieval_code = courier_code(settings, booking, "retrieval")
    assert any(
        a.payload.fallback_code_hash == hash_code(retrieval_code, locker.id)  # type: ignore[union-attr]
        for a in arms
    )
    sheet = ops.run_sheet(db_session, locker.id, merchant_id=order.merchant_id, settings=settings)
    assert [(s.action, s.code) for s in sheet] == [("retrieve", retrieval_code)]

    templates = db_session.scalars(
        select(Notification.template).where(Notification.user_id == shopper.id)
    ).all()
    assert sorted(templates) == ["pickup_expired", "pickup_ready", "pickup_reminder"]

    # The courier takes it back: the same "picked_up" event closes the return.
    assert lifecycle.picked_up(db_session, booking, ctx=ctx, now=late + timedelta(hours=2))
    comp = db_session.get(Compartment, booking.compartment_id)
    assert comp is not None and comp.state == "free"
    assert booking.close_reason == "returned_to_merchant" and order.status == "expired"
