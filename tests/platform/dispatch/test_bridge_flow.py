"""Bridge against the real broker with a protocol-level locker: the happy path and reordering."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from edge.protocol.envelopes import encode
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import (
    confirm,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.crypto import PiiCipher
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import AppliedEvent, OutboxCommand
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import secrets_of
from tuanbox.orders.models import Order

LAYOUT = [CompartmentSpec(0, 1, "S"), CompartmentSpec(0, 2, "M")]


def seed_order(p: Platform) -> tuple[str, str]:
    """A station with one locker and one confirmed (hence allocated) order: (locker, order)."""
    with p.session() as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, LAYOUT)
        order = make_order(
            session, user=make_shopper(session), sku=make_sku(session), station_id=station.id
        )
        confirm(session, order)
        session.commit()
        return locker.id, order.id


def order_status(p: Platform, order_id: str) -> str:
    with p.session() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.status


def command_statuses(p: Platform) -> dict[str, str]:
    with p.session() as session:
        return {f"{r.type}:{r.id}": r.status for r in session.scalars(select(OutboxCommand))}


def test_assign_deposit_pickup_through_the_broker(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id, order_id = seed_order(p)
    bridges(p)
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        assign = wait_for(lambda: [c for c in locker.commands if c.type == "assign"], what="assign")
        wait_for(lambda: "done" in command_statuses(p).values(), what="assign acked")
        compartment = assign[0].payload.compartment
        booking_ref = assign[0].payload.order_id

        locker.send_event(locker.event("door_opened", compartment=compartment))
        locker.send_event(locker.event("deposited", compartment=compartment, order_id=booking_ref))
        wait_for(lambda: order_status(p, order_id) == "ready_for_pickup", what="ready")
        arm = wait_for(
            lambda: [c for c in locker.commands if c.type == "arm_pickup"], what="arm_pickup"
        )
        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            assert arm[0].payload.token_id == booking.pickup_token_id
            note = session.scalars(
                select(Notification).where(Notification.template == "pickup_ready")
            ).one()
            # Test settings use the development inbox: the code is kept only encrypted.
            assert "fallback_code" not in note.payload
            assert secrets_of(PiiCipher(p.settings), note)["fallback_code"].isdigit()

        locker.send_event(locker.event("picked_up", compartment=compartment, order_id=booking_ref))
        wait_for(lambda: order_status(p, order_id) == "completed", what="completed")
        with p.session() as session:
            comp = session.scalars(select(Compartment).where(Compartment.lock == 1)).one()
            assert comp.state == "free" and comp.wear_count == 1
            row = session.get(Locker, locker_id)
            assert row is not None and row.online and row.agent_version == "sim-1"
            assert row.last_event_seq == 3
    finally:
        locker.close()


def test_duplicated_and_reordered_events_are_applied_once(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    locker_id, order_id = seed_order(p)
    bridge = bridges(p)
    locker = ProtocolLocker(locker_id, mqtt_broker[1]).connect()
    try:
        assign = wait_for(lambda: [c for c in locker.commands if c.type == "assign"], what="assign")
        compartment, ref = assign[0].payload.compartment, assign[0].payload.order_id
        opened = locker.event("door_opened", compartment=compartment)
        deposited = locker.event("deposited", compartment=compartment, order_id=ref)
        picked = locker.event("picked_up", compartment=compartment, order_id=ref)
        # Newest first, each twice, and the door event three times.
        for event in (picked, picked, deposited, opened, deposited, opened, opened):
            locker.publish("evt", encode(event))
        wait_for(lambda: order_status(p, order_id) == "completed", what="completed")
        wait_for(lambda: bridge.stats.applied + bridge.stats.duplicates == 7, what="all 7 seen")
        assert (bridge.stats.applied, bridge.stats.duplicates) == (3, 4)
        with p.session() as session:
            assert session.scalar(select(func.count()).select_from(AppliedEvent)) == 3
            wear = session.scalar(select(func.sum(Compartment.wear_count)))
            assert wear == 1  # one door_opened applied, although delivered three times
            transitions = [
                n.template for n in session.scalars(select(Notification).order_by(Notification.id))
            ]
            assert transitions.count("pickup_ready") == 1 and transitions.count("picked_up") == 1
    finally:
        locker.close()
