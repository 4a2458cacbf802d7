"""Orders bigger than an L compartment: split across compartments, all or none (real PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.envelopes import decode_command
from tests.conftest import make_settings
from tests.platform.fulfilment.fx import (
    TEST_ACTOR,
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.allocation import split_units
from tuanbox.fulfilment.hooks import bind_settings, settings_of
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.services import transition

LAYOUT = [
    CompartmentSpec(0, 1, "M", "ambient"),
    CompartmentSpec(0, 2, "L", "ambient"),
    CompartmentSpec(0, 3, "M", "ambient"),
    CompartmentSpec(0, 4, "L", "ambient"),
]


def _commands(session: Session, type: str) -> list[dict[str, object]]:
    rows = session.scalars(
        select(OutboxCommand).where(OutboxCommand.type == type).order_by(OutboxCommand.id)
    ).all()
    return [decode_command(r.body.encode()).payload.model_dump() for r in rows]


def _states(session: Session, locker_id: str) -> dict[str, str]:
    comps = session.scalars(select(Compartment).where(Compartment.locker_id == locker_id)).all()
    return {c.label: c.state for c in comps}


def test_split_units() -> None:
    assert split_units(3) == [3]
    assert split_units(4) == [4]
    assert split_units(6) == [4, 2]
    assert split_units(9) == [4, 4, 1]
    assert split_units(16) == [4, 4, 4, 4]


def test_an_order_bigger_than_an_l_gets_an_l_and_an_m(db_session: Session) -> None:
    bind_settings(db_session, make_settings())
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, LAYOUT)
    order = make_order(db_session, user=make_shopper(db_session), sku=make_sku(db_session, "M"),
                       station_id=station.id, qty=3)  # fmt: skip
    confirm(db_session, order)
    assert order.status == "allocated"
    fo = db_session.get(FulfilmentOrder, order.id)
    assert fo is not None and fo.state == "booked" and fo.units == 6
    parts = db_session.scalars(
        select(Booking).where(Booking.locker_id == locker.id).order_by(Booking.id)
    ).all()
    lead = parts[0]
    assert fo.booking_id == lead.id
    assert [p.lead_booking_id for p in parts] == [lead.id, lead.id]
    assert [p.units_used for p in parts] == [4, 2]
    assert lead.more_compartments == ["0-1"]
    assert parts[1].more_compartments is None
    assert _states(db_session, locker.id) == {"0-1": "reserved", "0-2": "reserved",
                                               "0-3": "free", "0-4": "free"}  # fmt: skip
    # Each part has its own deposit code for the courier.
    assigns = _commands(db_session, "assign")
    assert sorted((str(a["compartment"]), str(a["order_id"])) for a in assigns) == [
        ("0-1", parts[1].ref), ("0-2", lead.ref)]  # fmt: skip
    settings = settings_of(db_session)
    assert courier_code(settings, lead) != courier_code(settings, parts[1])

    # Another order of the same shopper and merchant never joins a split order's parts.
    product_sku = make_sku(db_session, "S")
    small = make_order(db_session, user=make_shopper(db_session), sku=product_sku,
                       station_id=station.id)  # fmt: skip
    confirm(db_session, small)
    small_fo = db_session.get(FulfilmentOrder, small.id)
    assert small_fo is not None and small_fo.booking_id not in {p.id for p in parts}

    # Cancelled before the courier came: every part's compartment is free again.
    transition(db_session, order, "cancelled", actor=TEST_ACTOR, reason="changed mind")
    assert [p.state for p in parts] == ["closed", "closed"]
    revokes = _commands(db_session, "revoke")
    assert sorted(str(r["compartment"]) for r in revokes) == ["0-1", "0-2"]


def test_all_parts_or_none_the_order_waits_in_the_queue(db_session: Session) -> None:
    bind_settings(db_session, make_settings())
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, LAYOUT)
    hold = make_order(db_session, user=make_shopper(db_session), sku=make_sku(db_session, "L"),
                      station_id=station.id)  # fmt: skip
    confirm(db_session, hold)  # takes one L
    big = make_order(db_session, user=make_shopper(db_session), sku=make_sku(db_session, "L"),
                     station_id=station.id, qty=2)  # fmt: skip
    confirm(db_session, big)
    fo = db_session.get(FulfilmentOrder, big.id)
    assert fo is not None and fo.state == "queued" and big.status == "confirmed"
    # The one L left was not kept for half of the order.
    assert list(_states(db_session, locker.id).values()).count("free") == 3
    assert len(_commands(db_session, "assign")) == 1

    transition(db_session, hold, "cancelled", actor=TEST_ACTOR, reason="changed mind")
    db_session.refresh(fo)
    assert fo.state == "booked" and big.status == "allocated"
    lead = db_session.get(Booking, fo.booking_id)
    assert lead is not None and lead.more_compartments == ["0-4"]


def test_a_hold_on_one_part_holds_the_order_and_every_door(db_session: Session) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tuanbox.audit.services import Actor
    from tuanbox.coldchain import holds
    from tuanbox.coldchain.models import Episode
    from tuanbox.fulfilment import lifecycle

    settings = make_settings()
    bind_settings(db_session, settings)
    station = make_station(db_session)
    locker, _ = make_locker(db_session, station.id, LAYOUT)
    order = make_order(db_session, user=make_shopper(db_session), sku=make_sku(db_session, "M"),
                       station_id=station.id, qty=3)  # fmt: skip
    confirm(db_session, order)
    lead, part = db_session.scalars(
        select(Booking).where(Booking.locker_id == locker.id).order_by(Booking.id)
    ).all()
    ctx = lifecycle.Context(settings=settings, signing_key=Ed25519PrivateKey.generate())
    now = datetime.now(UTC)
    assert lifecycle.deposited(db_session, part, ctx=ctx, now=now)
    assert order.status == "allocated" and _commands(db_session, "arm_pickup") == []
    assert lifecycle.deposited(db_session, lead, ctx=ctx, now=now)
    assert order.status == "ready_for_pickup"
    arms = _commands(db_session, "arm_pickup")
    assert sorted(str(a["compartment"]) for a in arms) == ["0-1", "0-2"]
    assert {a["token_id"] for a in arms} == {lead.pickup_token_id}

    # An excursion in the M part's compartment (0-1) holds the order and revokes both doors.
    episode = Episode(locker_id=locker.id, compartment="0-1", zone="ambient", rule="hard_limit",
                      detail="x", status="open", started_at=now, raised_at=now, evidence=[],
                      order_ids=[], provenance=[])  # fmt: skip
    db_session.add(episode)
    db_session.flush()
    (held,) = holds.place_holds(db_session, episode, part.compartment_id, now=now,
                                command_ttl_s=600)  # fmt: skip
    assert held.order_id == order.id and order.status == "quality_hold"
    revokes = _commands(db_session, "revoke")
    assert sorted(str(r["compartment"]) for r in revokes) == ["0-1", "0-2"]

    # Released after the deadline: both doors re-armed to the new deadline, the QR with them.
    for booking in (lead, part):
        booking.pickup_deadline = now - timedelta(minutes=1)
    hold = db_session.scalars(select(holds.QualityHold)).one()
    holds.release(db_session, hold.id, Actor(id="ops-1", role="ops"), "ok", settings=settings)
    assert order.status == "ready_for_pickup"
    rearmed = _commands(db_session, "arm_pickup")
    assert sorted(str(a["compartment"]) for a in rearmed) == ["0-1", "0-1", "0-2", "0-2"]
    assert lead.token_expires_at is not None and lead.token_expires_at > now.timestamp() + 3600
    assert part.token_expires_at == lead.token_expires_at
