"""Quality-hold decisions with the REAL locker agent on simulated hardware and the bridge.

A chilled parcel is deposited and put on quality hold (pickup revoked at the locker). Released
after its pickup deadline: a new deadline, a re-armed pickup and a new QR the locker opens for.
Rejected: the order is refunded and the parcel goes back, the courier's retrieval code is on
the run sheet and opens the door, and the compartment is free again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from edge.agent.demo import DemoLocker, run_locker
from tests.platform.dispatch.mqttfx import wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import (
    confirm,
    courier_code,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.audit.services import Actor
from tuanbox.coldchain import holds
from tuanbox.coldchain.models import Episode, QualityHold
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment import lifecycle, ops
from tuanbox.fulfilment.models import Booking
from tuanbox.fulfilment.pickup import public_key_b64, token_for
from tuanbox.lockers.domain import as_utc
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import standard_layout
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund

OPS = Actor(id="ops-1", role="ops")


@dataclass
class Held:
    sim: DemoLocker
    order_id: str
    merchant_id: str
    locker_id: str
    label: str
    hold_id: int


def _status(p: Platform, order_id: str) -> str:
    with p.session() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.status


def _all_done(p: Platform, type: str, at_least: int = 1) -> bool:
    with p.session() as session:
        rows = session.scalars(select(OutboxCommand).where(OutboxCommand.type == type)).all()
        return len(rows) >= at_least and all(r.status == "done" for r in rows)


def _door(sim: DemoLocker, label: str) -> str:
    return str(sim.board.get_state()["compartments"][label]["door"])


@contextmanager
def _held_parcel(
    p: Platform, bridges: Callable[..., Bridge], port: int, tmp_path: Path
) -> Iterator[Held]:
    """A chilled parcel deposited by the courier, then put on quality hold."""
    with p.session() as session:
        station = make_station(session)
        locker, _ = make_locker(session, station.id, standard_layout())
        sku = make_sku(session, "S", "chilled")
        order = make_order(session, user=make_shopper(session), sku=sku, station_id=station.id)
        confirm(session, order)
        session.commit()
        locker_id, order_id, merchant_id = locker.id, order.id, order.merchant_id
    bridges(p)
    sim = run_locker(locker_id, tmp_path / "locker", mqtt_port=port,
                     pickup_public_key=public_key_b64(p.ctx.signing_key))  # fmt: skip
    try:
        wait_for(lambda: _all_done(p, "assign"), 30, "the agent acknowledged the assign")
        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            comp = session.get(Compartment, booking.compartment_id)
            assert comp is not None
            label, code = comp.label, courier_code(p.settings, booking)
        sim.scan("*" + code)
        wait_for(lambda: _door(sim, label) == "open", 15, "open for the courier")
        sim.board.place_item(label)
        sim.board.close_door(label)
        wait_for(lambda: _status(p, order_id) == "ready_for_pickup", 30, "ready_for_pickup")
        wait_for(lambda: _all_done(p, "arm_pickup"), 30, "pickup armed on the locker")

        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            now = datetime.now(UTC)
            episode = Episode(locker_id=locker_id, compartment=label, zone="chilled",
                              rule="hard_limit", detail="12.5 °C", status="open",
                              started_at=now, raised_at=now, evidence=[], order_ids=[],
                              provenance=[])  # fmt: skip
            session.add(episode)
            session.flush()
            held = holds.place_holds(session, episode, booking.compartment_id, now=now,
                                     command_ttl_s=p.settings.command_ttl_s)  # fmt: skip
            assert [h.order_id for h in held] == [order_id]
            hold = session.scalars(select(QualityHold)).one()
            session.commit()
            hold_id = hold.id
        assert _status(p, order_id) == "quality_hold"
        wait_for(lambda: _all_done(p, "revoke"), 30, "pickup revoked on the locker")
        yield Held(sim, order_id, merchant_id, locker_id, label, hold_id)
    finally:
        sim.stop()


def test_a_hold_released_after_the_deadline_gets_a_new_one_and_the_locker_opens(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    tmp_path: Path,
) -> None:
    p = platform_for(mqtt_broker[1])
    with _held_parcel(p, bridges, mqtt_broker[1], tmp_path) as h:
        # The review took longer than the pickup period: the deadline passes during the hold.
        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            past = datetime.now(UTC) - timedelta(minutes=1)
            booking.pickup_deadline = past
            booking.token_expires_at = int(past.timestamp())
            old_token = token_for(booking, session.get(Compartment, booking.compartment_id),  # type: ignore[arg-type]
                                  p.ctx.signing_key)  # fmt: skip
            # The overdue job leaves a held parcel to the ops decision.
            assert lifecycle.return_overdue(session, ctx=p.ctx, now=datetime.now(UTC)) == 0
            session.commit()
        assert _status(p, h.order_id) == "quality_hold"

        with p.session() as session:
            holds.release(session, h.hold_id, OPS, "probe checked: 3 °C", settings=p.settings)
            session.commit()
        assert _status(p, h.order_id) == "ready_for_pickup"
        wait_for(lambda: _all_done(p, "arm_pickup", 2), 30, "pickup armed again")
        with p.session() as session:
            booking = session.scalars(select(Booking)).one()
            assert booking.pickup_deadline is not None
            deadline = as_utc(booking.pickup_deadline)
            assert deadline > datetime.now(UTC) + timedelta(hours=p.settings.pickup_deadline_h - 1)
            assert booking.token_expires_at == int(deadline.timestamp())
            comp = session.get(Compartment, booking.compartment_id)
            assert comp is not None
            token = token_for(booking, comp, p.ctx.signing_key)
        assert token != old_token

        h.sim.scan(token)
        wait_for(lambda: _door(h.sim, h.label) == "open", 15, "open for the shopper")
        h.sim.board.remove_item(h.label)
        h.sim.board.close_door(h.label)
        wait_for(lambda: _status(p, h.order_id) == "completed", 30, "completed")


def test_a_rejected_hold_goes_back_with_the_courier(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    tmp_path: Path,
) -> None:
    p = platform_for(mqtt_broker[1])
    with _held_parcel(p, bridges, mqtt_broker[1], tmp_path) as h:
        with p.session() as session:
            holds.reject(session, h.hold_id, OPS, "spoilt: 12 °C")
            session.commit()
        with p.session() as session:
            order = session.get(Order, h.order_id)
            assert order is not None and order.status == "cancelled"
            refunds = session.scalars(select(Refund).where(Refund.order_id == order.id)).all()
            assert [r.amount_cents for r in refunds] == [order.paid_cents]
            booking = session.scalars(select(Booking)).one()
            assert booking.state == "returning" and booking.retrieval_code_enc
            (line,) = ops.run_sheet(
                session, h.locker_id, merchant_id=h.merchant_id, settings=p.settings
            )
            assert (line.compartment, line.action, line.code) == (
                h.label, "retrieve", courier_code(p.settings, booking, "retrieval"))  # fmt: skip
        wait_for(lambda: _all_done(p, "arm_pickup", 2), 30, "retrieval armed on the locker")

        # The merchant's courier types the retrieval code from the run sheet, takes the parcel.
        h.sim.scan("#" + line.code)
        wait_for(lambda: _door(h.sim, h.label) == "open", 15, "open for the courier")
        h.sim.board.remove_item(h.label)
        h.sim.board.close_door(h.label)

        def returned() -> bool:
            with p.session() as session:
                booking = session.scalars(select(Booking)).one()
                comp = session.get(Compartment, booking.compartment_id)
                return (booking.state, booking.close_reason, comp and comp.state) == (
                    "closed", "returned_to_merchant", "free")  # fmt: skip

        wait_for(returned, 30, "the compartment is free again")
