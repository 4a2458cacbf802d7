"""Every kind of order, from payment to pickup, through the real bridge and a simulated locker.

regular and flash-sale: SimPay webhook → confirmed on payment, or, for a merchant who accepts
orders by hand, by its staff (regular-accepted) or by its lapse policy once the acceptance
deadline passes unanswered (flash-lapsed); group: the group succeeds; pre-sale: the batch is
received at the station hub. Each then waits in its station's next
delivery wave (no compartment yet), the wave job books compartments when the wave is due,
the courier deposits with the run-sheet code, the shopper opens with the pickup QR.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.agent.demo import DemoLocker, run_locker
from tests.platform.dispatch.mqttfx import wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import (
    courier_code,
    make_locker,
    make_shopper,
    make_sku,
    make_station,
)
from tests.platform.groupbuy.factories import pay
from tests.platform.presale.fx import succeeded_group
from traceability.settings import TraceSettings
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.flashsale import services as flash
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.fulfilment import waves
from tuanbox.fulfilment.models import Booking, DeliveryWave, FulfilmentOrder
from tuanbox.fulfilment.pickup import public_key_b64, token_for
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import standard_layout
from tuanbox.orders import acceptance
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.orders.services import create_order
from tuanbox.presale.receiving import receive

HUB = Actor(id="hub-staff", role="ops")
STAFF = Actor(id="merchant-staff", role="merchant_staff")


def _regular(session: Session, p: Platform, station_id: str) -> list[str]:
    sku = make_sku(session, "M")
    order = create_order(
        session,
        user_id=make_shopper(session).id,
        sku_id=sku.id,
        qty=1,
        unit_price_cents=sku.price_cents,
        station_id=station_id,
    )
    pay(session, p.settings, order.id)
    return [order.id]


def _flash(session: Session, p: Platform, station_id: str) -> list[str]:
    return _flash_on(session, p, station_id, make_sku(session, "S", "chilled"))


def _flash_on(session: Session, p: Platform, station_id: str, sku: Sku) -> list[str]:
    product = session.get(Product, sku.product_id)
    assert product is not None
    now = utcnow()
    sale = flash.create_sale(
        session,
        merchant_id=product.merchant_id,
        actor_id="staff",
        spec=flash.SaleSpec(
            sku_id=sku.id,
            title="秒杀",
            price_cents=99,
            stock_cap=5,
            per_user_limit=1,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(minutes=10),
        ),
    )
    session.commit()
    counters = FlashCounters.from_url(p.settings.redis_url)
    got = flash.reserve(
        session,
        counters,
        sale_id=sale.id,
        user_id=make_shopper(session).id,
        request_id=uuid.uuid4().hex,
        qty=1,
        now=utcnow(),
        station_id=station_id,
    )
    pay(session, p.settings, got.order_id)
    return [got.order_id]


def _manual_merchant(session: Session, sku_id: str, lapse: str) -> None:
    """The SKU's merchant accepts orders by hand within an hour; `lapse` after that."""
    sku = session.get(Sku, sku_id)
    assert sku is not None
    product = session.get(Product, sku.product_id)
    assert product is not None
    merchant = session.get(Merchant, product.merchant_id)
    assert merchant is not None
    merchant.order_acceptance, merchant.acceptance_lapse = "manual", lapse
    merchant.acceptance_window_s = 3600
    session.flush()


def _awaits_merchant(session: Session, order_id: str) -> Order:
    order = session.get(Order, order_id)
    assert order is not None
    session.refresh(order)
    assert (order.status, order.awaiting, order.wave_id) == ("paid", "merchant", None)
    assert order.accept_deadline is not None
    return order


def _regular_accepted(session: Session, p: Platform, station_id: str) -> list[str]:
    sku = make_sku(session, "M")
    _manual_merchant(session, sku.id, "refund")
    order = create_order(
        session,
        user_id=make_shopper(session).id,
        sku_id=sku.id,
        qty=1,
        unit_price_cents=sku.price_cents,
        station_id=station_id,
    )
    pay(session, p.settings, order.id)
    _awaits_merchant(session, order.id)
    acceptance.accept(session, order.id, actor=STAFF)
    return [order.id]


def _flash_lapsed(session: Session, p: Platform, station_id: str) -> list[str]:
    sku = make_sku(session, "S", "chilled")
    _manual_merchant(session, sku.id, "confirm")
    (order_id,) = _flash_on(session, p, station_id, sku)
    deadline = _awaits_merchant(session, order_id).accept_deadline
    assert deadline is not None
    session.commit()
    # Nobody answered: the deadline scan (beat) applies the merchant's policy, confirm.
    assert acceptance.apply_deadlines(p.factory, now=deadline + timedelta(seconds=1)) == 1
    return [order_id]


def _group(session: Session, p: Platform, station_id: str) -> list[str]:
    return succeeded_group(session, p.settings, station_id, presale=False).order_ids


def _presale(session: Session, p: Platform, station_id: str) -> list[str]:
    closed = succeeded_group(session, p.settings, station_id, presale=True)
    for order_id in closed.order_ids:
        order = session.get(Order, order_id)
        assert order is not None and (order.status, order.awaiting) == ("paid", "receiving")
    got = receive(
        session, closed.campaign_id, station_id=station_id, qty=2, from_gln=None, actor=HUB,
        settings=p.settings, trace=TraceSettings(), now=utcnow(),
    )  # fmt: skip
    assert sorted(got.confirmed) == sorted(closed.order_ids)
    return closed.order_ids


PATHS: dict[str, Callable[[Session, Platform, str], list[str]]] = {
    "regular": _regular,
    "regular-accepted": _regular_accepted,
    "flash": _flash,
    "flash-lapsed": _flash_lapsed,
    "group": _group,
    "presale": _presale,
}


def _order(p: Platform, order_id: str) -> Order:
    with p.session() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order


def _acked(p: Platform, type: str, n: int) -> bool:
    with p.session() as session:
        rows = session.scalars(select(OutboxCommand).where(OutboxCommand.type == type)).all()
        return len(rows) >= n and all(r.status == "done" for r in rows)


def _booking(p: Platform, order_id: str) -> tuple[Booking, Compartment]:
    with p.session() as session:
        fo = session.get(FulfilmentOrder, order_id)
        assert fo is not None and fo.booking_id is not None, fo and fo.state
        booking = session.get(Booking, fo.booking_id)
        assert booking is not None
        comp = session.get(Compartment, booking.compartment_id)
        assert comp is not None
        return booking, comp


def _deposit_and_pick_up(p: Platform, sim: DemoLocker, order_id: str) -> None:
    booking, comp = _booking(p, order_id)
    label = comp.label
    sim.scan("*" + courier_code(p.settings, booking))
    wait_for(lambda: sim.board.get_state()["compartments"][label]["door"] == "open", 15, "open")
    sim.board.place_item(label)
    sim.board.close_door(label)
    wait_for(lambda: _order(p, order_id).status == "ready_for_pickup", 30, "ready_for_pickup")
    wait_for(
        lambda: _booking(p, order_id)[0].pickup_token_id is not None and _acked(p, "arm_pickup", 1),
        30,
        "pickup armed",
    )
    booking, comp = _booking(p, order_id)
    sim.scan(token_for(booking, comp, p.ctx.signing_key))
    wait_for(lambda: sim.board.get_state()["compartments"][label]["door"] == "open", 15, "open")
    sim.board.remove_item(label)
    sim.board.close_door(label)
    wait_for(lambda: _order(p, order_id).status == "completed", 30, "completed")


@pytest.mark.parametrize("path", sorted(PATHS))
def test_each_kind_of_order_goes_from_payment_to_pickup(
    path: str,
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    tmp_path: Path,
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, standard_layout())
        session.commit()
        order_ids = PATHS[path](session, p, station.id)
        session.commit()
        locker_id = locker.id

    # Confirmed and in the station's next wave, but no compartment days ahead of the run.
    with p.session() as session:
        orders = [session.get(Order, i) for i in order_ids]
        assert all(o is not None and o.status == "confirmed" and o.wave_id for o in orders)
        wave_ids = {o.wave_id for o in orders if o}
        assert len(wave_ids) == 1
        wave = session.get(DeliveryWave, wave_ids.pop())
        assert wave is not None and wave.station_id == station.id
        assert not session.scalars(select(FulfilmentOrder)).all()
    assert waves.run(p.factory, p.settings) == 0, "not due yet"
    # The wave's allocation time comes (the beat runs the job); a second run books nothing.
    assert waves.run(p.factory, p.settings, due_at=wave.allocate_at) == len(order_ids)
    assert waves.run(p.factory, p.settings, due_at=wave.allocate_at) == 0
    assert {_order(p, i).status for i in order_ids} == {"allocated"}

    bridges(p)
    sim = run_locker(
        locker_id,
        tmp_path / "locker",
        mqtt_port=mqtt_broker[1],
        pickup_public_key=public_key_b64(p.ctx.signing_key),
    )
    try:
        wait_for(lambda: _acked(p, "assign", len(order_ids)), 30, "assigns acknowledged")
        for order_id in order_ids:
            _deposit_and_pick_up(p, sim, order_id)
    finally:
        sim.stop()

    with p.session() as session:
        for order_id in order_ids:
            moves = session.scalars(
                select(OrderTransition.to_status)
                .where(OrderTransition.order_id == order_id)
                .order_by(OrderTransition.id)
            ).all()
            assert moves == [
                "pending_payment",
                "paid",
                "confirmed",
                "allocated",
                "ready_for_pickup",
                "picked_up",
                "completed",
            ], (path, moves)
            order = session.get(Order, order_id)
            assert order is not None and order.picked_up_at is not None
            assert not order.stock_held, "its units left stock at pickup"
