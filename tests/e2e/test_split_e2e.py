"""A split order end to end with the REAL locker agent on simulated hardware and the bridge.

Three M items (6 size units) are more than an L holds: the order gets an L and an M, each
with its own assign and deposit code on the courier's run sheet. Ready for pickup once both
are in; then ONE QR opens both doors, and the order completes when both are empty.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from edge.agent.demo import DemoLocker, run_locker
from tests.platform.dispatch.mqttfx import wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import (
    confirm,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment import ops
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.fulfilment.pickup import public_key_b64, token_for
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import standard_layout
from tuanbox.orders.models import Order


def _status(p: Platform, order_id: str) -> str:
    with p.session() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.status


def _done(p: Platform, type: str, count: int) -> bool:
    with p.session() as session:
        rows = session.scalars(select(OutboxCommand).where(OutboxCommand.type == type)).all()
        return len(rows) == count and all(r.status == "done" for r in rows)


def _door(sim: DemoLocker, label: str) -> str:
    return str(sim.board.get_state()["compartments"][label]["door"])


def test_one_qr_opens_every_compartment_of_a_split_order(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    tmp_path: Path,
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, standard_layout())
        order = make_order(session, user=make_shopper(session), sku=make_sku(session, "M"),
                           station_id=station.id, qty=3)  # fmt: skip
        confirm(session, order)
        session.commit()
        locker_id, order_id, merchant_id = locker.id, order.id, order.merchant_id
    assert _status(p, order_id) == "allocated"
    bridges(p)
    sim = run_locker(locker_id, tmp_path / "locker", mqtt_port=mqtt_broker[1],
                     pickup_public_key=public_key_b64(p.ctx.signing_key))  # fmt: skip
    try:
        wait_for(lambda: _done(p, "assign", 2), 30, "both parts assigned on the locker")
        with p.session() as session:
            lines = ops.run_sheet(session, locker_id, merchant_id=merchant_id, settings=p.settings)
        assert [(ln.compartment, ln.size, ln.action) for ln in lines] == [
            ("0-7", "M", "deposit"), ("0-13", "L", "deposit")]  # fmt: skip

        # The courier loads each part with its own code; the first alone is not ready yet.
        for n, line in enumerate(lines):
            label = line.compartment
            sim.scan("*" + line.code)
            wait_for(lambda: _door(sim, label) == "open", 15, "open")  # noqa: B023 - used at once
            sim.board.place_item(label)
            sim.board.close_door(label)
            if n == 0:
                wait_for(lambda: _part_state(p, label) == "deposited", 30,  # noqa: B023
                         "first part deposited")  # fmt: skip
                assert _status(p, order_id) == "allocated"
        wait_for(lambda: _status(p, order_id) == "ready_for_pickup", 30, "ready_for_pickup")
        wait_for(lambda: _done(p, "arm_pickup", 2), 30, "both parts armed on the locker")

        # The shopper's one QR (as the API renders it) opens both doors.
        with p.session() as session:
            fo = session.get(FulfilmentOrder, order_id)
            assert fo is not None
            lead = session.get(Booking, fo.booking_id)
            assert lead is not None and lead.more_compartments == ["0-7"]
            comp = session.get(Compartment, lead.compartment_id)
            assert comp is not None and comp.label == "0-13"
            token = token_for(lead, comp, p.ctx.signing_key)
        sim.scan(token)
        wait_for(lambda: _door(sim, "0-13") == "open" and _door(sim, "0-7") == "open", 15,
                 "both doors open")  # fmt: skip
        sim.board.remove_item("0-13")
        sim.board.close_door("0-13")
        wait_for(lambda: _part_state(p, "0-13") == "closed", 30, "the L part emptied")
        assert _status(p, order_id) == "ready_for_pickup"  # the M part is still full
        sim.board.remove_item("0-7")
        sim.board.close_door("0-7")
        wait_for(lambda: _status(p, order_id) == "completed", 30, "completed")

        with p.session() as session:
            parts = session.scalars(select(Booking).order_by(Booking.id)).all()
            assert [(b.state, b.close_reason) for b in parts] == [("closed", "picked_up")] * 2
            comps = session.scalars(
                select(Compartment).where(Compartment.locker_id == locker_id)
            ).all()
            assert all(c.state == "free" for c in comps)
    finally:
        sim.stop()


def _part_state(p: Platform, label: str) -> str:
    with p.session() as session:
        row = session.execute(
            select(Booking.state)
            .join(Compartment, Compartment.id == Booking.compartment_id)
            .where(Compartment.board == int(label.split("-")[0]),
                   Compartment.lock == int(label.split("-")[1]))
        ).scalar_one()  # fmt: skip
        return str(row)
