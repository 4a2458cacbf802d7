"""Allocation on order confirmation: zone, smallest fit, wear, sharing, queue (real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import decode_command, hash_code
from tests.conftest import make_settings
from tests.platform.fulfilment.fx import (
    TEST_ACTOR,
    columns_holding,
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.allocation import free_compartment, queue_position
from tuanbox.fulfilment.hooks import bind_settings, settings_of
from tuanbox.fulfilment.models import Booking, FulfilmentOrder, OpsAlert
from tuanbox.lockers.domain import Candidate, choose, fits, units_for
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.services import transition

LAYOUT = [
    CompartmentSpec(0, 1, "S", "ambient"),
    CompartmentSpec(0, 2, "S", "ambient"),
    CompartmentSpec(0, 3, "M", "ambient"),
    CompartmentSpec(0, 4, "L", "ambient"),
    CompartmentSpec(0, 5, "S", "chilled"),
    CompartmentSpec(0, 6, "M", "frozen"),
]


def _booking(session: Session, order_id: str) -> tuple[FulfilmentOrder, Booking | None]:
    fo = session.get(FulfilmentOrder, order_id)
    assert fo is not None
    return fo, session.get(Booking, fo.booking_id) if fo.booking_id else None


def _comp(session: Session, booking: Booking) -> Compartment:
    comp = session.get(Compartment, booking.compartment_id)
    assert comp is not None
    return comp


def test_choose_prefers_zone_then_smallest_then_least_worn() -> None:
    cands = [
        Candidate(1, "ambient", "L", 0),
        Candidate(2, "ambient", "M", 5),
        Candidate(3, "ambient", "M", 1),
        Candidate(4, "chilled", "S", 0),
    ]
    assert choose(cands, zone="ambient", units=1) == cands[2]
    assert choose(cands, zone="ambient", units=3) == cands[0]
    assert choose(cands, zone="chilled", units=2) is None
    assert choose(cands, zone="frozen", units=1) is None
    assert units_for("M", 2) == 4 and fits(2, 2, "L") and not fits(3, 2, "L")


def test_confirmed_order_gets_smallest_compartment_in_its_zone_and_an_assign(
    db_session: Session,
) -> None:
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, LAYOUT)
    shopper = make_shopper(db_session)
    chilled = make_order(
        db_session, user=shopper, sku=make_sku(db_session, "S", "chilled"), station_id=station.id
    )
    confirm(db_session, chilled)

    fo, booking = _booking(db_session, chilled.id)
    assert fo.state == "booked" and booking is not None
    comp = _comp(db_session, booking)
    assert (comp.zone, comp.size, comp.state) == ("chilled", "S", "reserved")
    assert chilled.status == "allocated"

    # The courier's code is stored encrypted only; the locker gets its hash.
    code = courier_code(settings_of(db_session), booking)
    assert len(code) == 6 and code.isdigit()
    assert columns_holding(db_session, code) == []
    row = db_session.scalars(
        select(OutboxCommand).where(OutboxCommand.ref == f"booking:{booking.id}")
    ).one()
    command = decode_command(row.body)
    assert command.type == "assign" and row.locker_id == locker.id
    assert command.payload.compartment == "0-5"  # type: ignore[union-attr]
    assert command.payload.deposit_code_hash == hash_code(code, locker.id)  # type: ignore[union-attr]


def test_smallest_fit_and_least_worn(db_session: Session) -> None:
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, LAYOUT)
    comps = {c.label: c for c in locker.compartments}
    comps["0-1"].wear_count = 9
    db_session.flush()
    small = make_sku(db_session, "S", "ambient")
    o1 = make_order(db_session, user=make_shopper(db_session), sku=small, station_id=station.id)
    confirm(db_session, o1)
    assert _comp(db_session, _booking(db_session, o1.id)[1]).label == "0-2"
    # Three S items are 3 units: only the L compartment holds them.
    o2 = make_order(
        db_session, user=make_shopper(db_session), sku=small, station_id=station.id, qty=3
    )
    confirm(db_session, o2)
    assert _comp(db_session, _booking(db_session, o2.id)[1]).label == "0-4"


def test_one_shoppers_orders_share_a_compartment_while_they_fit(db_session: Session) -> None:
    station = make_station(db_session)
    make_locker(db_session, station.id, [CompartmentSpec(0, 1, "M"), CompartmentSpec(0, 2, "M")])
    shopper = make_shopper(db_session)
    small = make_sku(db_session, "S")
    orders = [
        make_order(db_session, user=shopper, sku=small, station_id=station.id) for _ in range(3)
    ]
    for order in orders:
        confirm(db_session, order)
    bookings = [_booking(db_session, o.id)[1] for o in orders]
    assert bookings[0] is bookings[1]  # two S units fill one M compartment
    assert bookings[2] is not None and bookings[2] is not bookings[0]
    assert bookings[0].units_used == 2  # type: ignore[union-attr]
    assigns = db_session.scalars(select(OutboxCommand).where(OutboxCommand.type == "assign")).all()
    assert len(assigns) == 2  # the shared booking needs no second assign


def test_full_station_queues_oldest_first_and_shows_position(db_session: Session) -> None:
    settings = make_settings()
    bind_settings(db_session, settings)
    station = make_station(db_session)
    make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")])
    small = make_sku(db_session, "S")
    orders = [
        make_order(db_session, user=make_shopper(db_session), sku=small, station_id=station.id)
        for _ in range(3)
    ]
    for order in orders:
        confirm(db_session, order)
    fos = [_booking(db_session, o.id)[0] for o in orders]
    assert [f.state for f in fos] == ["booked", "queued", "queued"]
    assert [queue_position(db_session, f) for f in fos] == [None, 1, 2]
    assert [o.status for o in orders] == ["allocated", "confirmed", "confirmed"]

    first = _booking(db_session, orders[0].id)[1]
    assert first is not None
    free_compartment(db_session, first, reason="test", settings=settings, now=datetime.now(UTC))
    assert [f.state for f in fos] == ["closed", "booked", "queued"]
    assert queue_position(db_session, fos[2]) == 1
    assert orders[1].status == "allocated"


def test_flagged_compartment_is_skipped_and_oversize_order_raises_an_alert(
    db_session: Session,
) -> None:
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, [CompartmentSpec(0, 1, "L")])
    locker.compartments[0].flagged_mismatch = True
    db_session.flush()
    small = make_sku(db_session, "S")
    queued = make_order(db_session, user=make_shopper(db_session), sku=small, station_id=station.id)
    confirm(db_session, queued)
    assert _booking(db_session, queued.id)[0].state == "queued"

    big = make_order(
        db_session,
        user=make_shopper(db_session),
        sku=make_sku(db_session, "L"),
        station_id=station.id,
        qty=5,  # more than four L compartments: too big even to split
    )
    confirm(db_session, big)
    assert _booking(db_session, big.id)[0].state == "exception"
    alert = db_session.scalars(select(OpsAlert).where(OpsAlert.order_id == big.id)).one()
    assert alert.kind == "not_allocatable" and "20 size units" in alert.detail


@pytest.mark.parametrize("station", [None])
def test_order_without_station_only_alerts(db_session: Session, station: None) -> None:
    order = make_order(
        db_session, user=make_shopper(db_session), sku=make_sku(db_session), station_id=station
    )
    confirm(db_session, order)
    assert db_session.get(FulfilmentOrder, order.id) is None
    assert order.status == "confirmed"
    assert db_session.scalars(select(OpsAlert).where(OpsAlert.order_id == order.id)).one()


def test_cancelled_orders_give_their_compartment_back_to_the_queue(db_session: Session) -> None:
    bind_settings(db_session, make_settings())
    station = make_station(db_session)
    make_locker(db_session, station.id, [CompartmentSpec(0, 1, "M")])
    shopper = make_shopper(db_session)
    small = make_sku(db_session, "S")
    shared = [
        make_order(db_session, user=shopper, sku=small, station_id=station.id) for _ in range(2)
    ]
    waiting = make_order(
        db_session, user=make_shopper(db_session), sku=small, station_id=station.id
    )
    for order in (*shared, waiting):
        confirm(db_session, order)
    booking = _booking(db_session, shared[0].id)[1]
    assert booking is not None and booking.units_used == 2
    assert _booking(db_session, waiting.id)[0].state == "queued"

    transition(db_session, shared[0], "cancelled", actor=TEST_ACTOR, reason="changed mind")
    assert booking.units_used == 1 and booking.state == "reserved"
    assert _booking(db_session, waiting.id)[0].state == "queued"

    transition(db_session, shared[1], "cancelled", actor=TEST_ACTOR, reason="changed mind")
    assert booking.state == "closed" and booking.close_reason == "cancelled"
    revoke = db_session.scalars(select(OutboxCommand).where(OutboxCommand.type == "revoke")).one()
    assert decode_command(revoke.body).payload.order_id == booking.ref  # type: ignore[union-attr]
    assert _booking(db_session, waiting.id)[0].state == "booked"
    assert waiting.status == "allocated"
