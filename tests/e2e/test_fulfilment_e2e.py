"""Order to empty compartment with the REAL locker agent on simulated hardware and the bridge.

order confirmed → allocated → assign over MQTT → courier types the deposit code, puts the
parcel in, shuts the door → ready_for_pickup, QR issued, arm_pickup → shopper scans the QR,
takes the parcel, shuts the door → picked_up → completed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from edge.agent.demo import run_locker
from tests.platform.dispatch.mqttfx import wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import (
    columns_holding,
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.models import Booking
from tuanbox.fulfilment.pickup import public_key_b64, token_for
from tuanbox.lockers.models import Compartment, Locker
from tuanbox.lockers.services import standard_layout
from tuanbox.orders.models import Order, OrderTransition


def _status(p: Platform, order_id: str) -> str:
    with p.session() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.status


def _commands_done(p: Platform, type: str) -> bool:
    with p.session() as session:
        rows = session.scalars(select(OutboxCommand).where(OutboxCommand.type == type)).all()
        return bool(rows) and all(r.status == "done" for r in rows)


def test_order_to_pickup_with_the_real_agent(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    tmp_path: Path,
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, standard_layout())
        order = make_order(
            session, user=make_shopper(session), sku=make_sku(session, "M"), station_id=station.id
        )
        confirm(session, order)
        session.commit()
        locker_id, order_id = locker.id, order.id
    assert _status(p, order_id) == "allocated"
    bridges(p)
    sim = run_locker(
        locker_id,
        tmp_path / "locker",
        mqtt_port=mqtt_broker[1],
        pickup_public_key=public_key_b64(p.ctx.signing_key),
    )
    try:
        wait_for(lambda: _commands_done(p, "assign"), 30, "the agent acknowledged the assign")
        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            comp = session.get(Compartment, booking.compartment_id)
            assert comp is not None
            label, deposit_code = comp.label, courier_code(p.settings, booking)
            assert (comp.size, comp.zone) == ("M", "ambient")
            row = session.get(Locker, locker_id)
            assert row is not None and row.online and row.agent_version

        # The courier types the deposit code from the run sheet, loads the parcel, shuts it.
        sim.scan("*" + deposit_code)
        wait_for(lambda: sim.board.get_state()["compartments"][label]["door"] == "open", 15, "open")
        sim.board.place_item(label)
        sim.board.close_door(label)
        wait_for(lambda: _status(p, order_id) == "ready_for_pickup", 30, "ready_for_pickup")
        wait_for(lambda: _commands_done(p, "arm_pickup"), 30, "pickup armed on the locker")
        with p.session() as session:
            # After the deposit no column of any table holds the courier's code in clear.
            assert columns_holding(session, deposit_code) == []

        # The shopper shows the QR from the notification (the API renders this same token).
        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            comp = session.get(Compartment, booking.compartment_id)
            assert comp is not None and comp.state == "occupied"
            token = token_for(booking, comp, p.ctx.signing_key)
        sim.scan(token)
        wait_for(lambda: sim.board.get_state()["compartments"][label]["door"] == "open", 15, "open")
        sim.board.remove_item(label)
        sim.board.close_door(label)
        wait_for(lambda: _status(p, order_id) == "completed", 30, "completed")

        with p.session() as session:
            moves = session.scalars(
                select(OrderTransition.to_status)
                .where(OrderTransition.order_id == order_id)
                .order_by(OrderTransition.id)
            ).all()
            assert moves[-5:] == [
                "confirmed",
                "allocated",
                "ready_for_pickup",
                "picked_up",
                "completed",
            ]
            comp = session.scalars(select(Compartment).where(Compartment.board == 0)).all()
            used = next(c for c in comp if c.label == label)
            assert used.state == "free" and used.wear_count == 2 and not used.flagged_mismatch
            assert session.scalars(select(Booking)).one().close_reason == "picked_up"
    finally:
        sim.stop()
