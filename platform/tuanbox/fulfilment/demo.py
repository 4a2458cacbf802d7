"""Demo step: a regular and a flash-sale order go from payment to pickup at a simulated locker.

Both are paid through SimPay and confirmed on payment, join their station's next delivery
wave, get compartments when the wave job runs that wave (the demo does not wait for the
courier's hour), and are deposited and picked up. The real edge agent runs as a subprocess
(`tuanbox-edge demo`: firmware_sim lock board and scanner on ptys), the bridge runs in this
process, the database is the demo's (SQLite by default). Each transition is printed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.accounts.models import User
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.devservices.mqtt import clear_retained
from tuanbox.dispatch.bridge import Bridge, forget_session
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment import codes, pickup, waves
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.lifecycle import Context
from tuanbox.fulfilment.models import Booking, DeliveryWave, FulfilmentOrder
from tuanbox.fulfilment.provisioning import provision_locker
from tuanbox.lockers.domain import as_utc
from tuanbox.lockers.models import Compartment, Station
from tuanbox.lockers.services import create_station, standard_layout
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.settings import Settings


def _until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _seed(session: Session, settings: Settings, locker_id: str) -> dict[str, str]:
    """A station with a locker, a merchant confirming on payment, a flash sale; two shoppers
    each buy (one at list price, one in the sale) and pay through SimPay. {kind: order id}."""
    from tuanbox.flashsale import services as flash
    from tuanbox.flashsale.counters import FlashCounters
    from tuanbox.orders.services import create_order
    from tuanbox.payments.services import handle_event, start_checkout
    from tuanbox.payments.simpay import SimPay

    station = create_station(
        session, id=f"st-{locker_id}", name="Demo lobby", address="1 Demo Road", lat=31.23,
        lon=121.47, opening_notes="24h",
    )  # fmt: skip
    provision_locker(
        session, settings, locker_id=locker_id, station_id=station.id, layout=standard_layout()
    )
    merchant = Merchant(name="Demo farm", licence_number=f"demo-{uuid.uuid4().hex}", verified=True)
    regular_buyer = User(role="shopper", display_name="Demo shopper")
    flash_buyer = User(role="shopper", display_name="Demo flash shopper")
    session.add_all([merchant, regular_buyer, flash_buyer])
    session.flush()
    yoghurt = Product(merchant_id=merchant.id, name="Yoghurt", size_class="S", zone="chilled")
    cherries = Product(merchant_id=merchant.id, name="Cherries", size_class="S")
    session.add_all([yoghurt, cherries])
    session.flush()
    sku = Sku(product_id=yoghurt.id, name="6-pack", price_cents=1800, stock_on_hand=10)
    sale_sku = Sku(product_id=cherries.id, name="1 kg", price_cents=5900, stock_on_hand=10)
    session.add_all([sku, sale_sku])
    session.flush()
    now = utcnow()
    sale = flash.create_sale(
        session,
        merchant_id=merchant.id,
        actor_id="demo",
        spec=flash.SaleSpec(
            sku_id=sale_sku.id, title="秒杀 cherries ¥9.90", price_cents=990, stock_cap=3,
            per_user_limit=1, starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(minutes=10),
        ),
    )  # fmt: skip
    regular = create_order(
        session, user_id=regular_buyer.id, sku_id=sku.id, qty=1, unit_price_cents=1800,
        station_id=station.id,
    )  # fmt: skip
    session.commit()  # the flash sale's reservation commits its own transaction
    counters = FlashCounters.from_url(settings.redis_url)
    try:
        won = flash.reserve(
            session, counters, sale_id=sale.id, user_id=flash_buyer.id,
            request_id=uuid.uuid4().hex, qty=1, now=utcnow(), station_id=station.id,
        )  # fmt: skip
    finally:
        counters.close()
    sim = SimPay(settings)
    orders = {"regular": regular.id, "flash-sale": won.order_id}
    for order_id in orders.values():
        order = session.get(Order, order_id)
        assert order is not None
        intent = start_checkout(session, order, sim)
        session.commit()  # SimPay books the charge on its own connection, as a gateway would
        body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
        handle_event(session, sim.verify_webhook(headers, body))
        session.commit()
    return orders


class _Watcher:
    """Prints each new transition of the order (and each command's ack) once."""

    def __init__(
        self, factory: sessionmaker[Session], order_id: str, locker_id: str, label: str = "order"
    ) -> None:
        self.factory, self.order_id, self.locker_id = factory, order_id, locker_id
        self.label = label
        self.seen: list[str] = []
        self.printed: set[int] = set()
        self.acks: set[str] = set()

    def status(self) -> str:
        with self.factory() as session:
            mine = select(OutboxCommand).where(OutboxCommand.locker_id == self.locker_id)
            for cmd in session.scalars(mine.order_by(OutboxCommand.created_at)):
                if cmd.status in ("done", "rejected", "failed") and cmd.id not in self.acks:
                    self.acks.add(cmd.id)
                    typer.echo(f"        locker ack: {cmd.type} → {cmd.status}")
            moves = session.scalars(
                select(OrderTransition)
                .where(OrderTransition.order_id == self.order_id)
                .order_by(OrderTransition.id)
            ).all()
            for move in moves:
                if move.id not in self.printed:
                    self.printed.add(move.id)
                    self.seen.append(move.to_status)
                    typer.echo(
                        f"        {self.label} {self.order_id[:8]}: {move.from_status} → "
                        f"{move.to_status} ({move.reason})"
                    )
            order = session.get(Order, self.order_id)
            assert order is not None
            return order.status

    def wait(self, status: str) -> None:
        _until(lambda: self.status() == status, f"order {status}")


def _start_agent(
    workdir: Path, locker_id: str, settings: Settings, public_key: str
) -> tuple[subprocess.Popen[str], dict[str, str]]:
    edge = str(Path(sys.executable).with_name("tuanbox-edge"))
    # Our own console script next to this interpreter, with arguments we built.
    proc = subprocess.Popen(  # noqa: S603
        [
            edge,
            "demo",
            "--workdir",
            str(workdir),
            "--locker-id",
            locker_id,
            "--mqtt-host",
            settings.mqtt_host,
            "--mqtt-port",
            str(settings.mqtt_port),
            "--public-key",
            public_key,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "EDGE_LOG_LEVEL": "WARNING"},
    )
    assert proc.stdout is not None
    text = ""
    while True:  # the agent prints one JSON object describing itself once it runs
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("the edge agent exited before it started")
        text += line
        try:
            return proc, json.loads(text)
        except json.JSONDecodeError:
            continue


def _booking_of(session: Session, order_id: str) -> Booking:
    """This order's booking (the demo database may hold many from earlier runs)."""
    fo = session.get(FulfilmentOrder, order_id)
    booking = session.get(Booking, fo.booking_id) if fo and fo.booking_id else None
    if booking is None:
        raise RuntimeError(f"order {order_id} has no compartment booking")
    return booking


def fulfilment_demo(settings: Settings) -> str:
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    locker_id = f"demo-{uuid.uuid4().hex[:8]}"
    ctx = Context(settings, pickup.load_signing_key(settings))
    with session_scope(factory) as session:
        bind_settings(session, settings)
        orders = _seed(session, settings, locker_id)
    watchers = [_Watcher(factory, oid, locker_id, kind) for kind, oid in orders.items()]
    watchers[1].acks = watchers[0].acks  # each locker ack printed once
    for watch in watchers:
        watch.status()
    _ship_wave(factory, settings, list(orders.values()))
    bridge = Bridge(settings, factory, ctx, client_id=f"tuanbox-demo-{locker_id}")
    bridge.start()
    workdir = Path("var/edge-demo") / locker_id
    proc, info = _start_agent(workdir, locker_id, settings, pickup.public_key_b64(ctx.signing_key))
    try:
        _until(
            lambda: sum(c.type == "assign" for c in _done(factory, locker_id)) >= len(watchers),
            "assigns acked",
        )
        for watch in watchers:
            _through_the_locker(factory, ctx, watch, info)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()
        bridge.stop()
        forget_session(settings, bridge.client_id)
        engine.dispose()
        shutil.rmtree(workdir, ignore_errors=True)
        # The demo locker is gone: leave no retained status/state of it on the broker.
        clear_retained(settings.mqtt_host, settings.mqtt_port, f"tuanbox/v1/lockers/{locker_id}/#")
    return "; ".join(f"{w.label} {w.order_id[:8]}: " + " → ".join(w.seen) for w in watchers)


def _ship_wave(factory: sessionmaker[Session], settings: Settings, order_ids: list[str]) -> None:
    """Show the orders' delivery wave, then run it now as the beat would at its hour."""
    with factory() as session:
        order = session.get(Order, order_ids[0])
        wave = session.get(DeliveryWave, order.wave_id) if order and order.wave_id else None
        station = session.get(Station, wave.station_id) if wave else None
        if wave is None or station is None:
            raise RuntimeError(f"order {order_ids[0]} was not confirmed into a delivery wave")
        tz = waves.schedule_for(station, settings).tz
    local = {k: as_utc(v).astimezone(tz).strftime("%m-%d %H:%M") for k, v in (
        ("cutoff", wave.cutoff_at), ("departs", wave.departs_at), ("allocate", wave.allocate_at)
    )}  # fmt: skip
    typer.echo(
        f"        delivery wave {wave.wave_date} at {station.id} ({tz.key}): cutoff "
        f"{local['cutoff']}, compartments at {local['allocate']}, courier departs "
        f"{local['departs']}"
    )
    typer.echo("        the demo runs that wave's allocation now (the beat would at its hour)")
    waves.run(factory, settings, due_at=wave.allocate_at, wave_id=wave.id)


def _through_the_locker(
    factory: sessionmaker[Session], ctx: Context, watch: _Watcher, info: dict[str, str]
) -> None:
    """Courier deposit with the run-sheet code, then the shopper's QR pickup."""
    from firmware_sim.control import request

    board, scanner = info["lockboard_control"], info["scanner_control"]
    with factory() as session:
        booking = _booking_of(session, watch.order_id)
        comp = session.get(Compartment, booking.compartment_id)
        assert comp is not None
        # What the courier reads off the run sheet.
        code = codes.reveal(
            PiiCipher(ctx.settings), booking.ref, "deposit", booking.deposit_code_enc
        )
        label = comp.label
    watch.status()
    typer.echo(
        f"        {watch.label}: locker {watch.locker_id}, {comp.zone} {comp.size} door {label}; "
        f"courier types deposit code {code}, loads the parcel, shuts the door"
    )
    request(scanner, "scan", text="*" + code)
    _until(lambda: request(board, "get_state")["compartments"][label]["door"] == "open", "door")
    request(board, "place_item", compartment=label)
    request(board, "close_door", compartment=label)
    watch.wait("ready_for_pickup")
    with factory() as session:
        _until(lambda: _armed(factory, watch.order_id), "arm_pickup acked")
        booking = _booking_of(session, watch.order_id)
        token = pickup.token_for(booking, comp, ctx.signing_key)
    qr_file = Path(f"var/demo-pickup-qr-{watch.label}.png")
    qr_file.write_bytes(pickup.render_qr(token, "png"))
    typer.echo(f"        shopper scans the pickup QR (saved to {qr_file}), takes the parcel")
    request(scanner, "scan", text=token)
    _until(lambda: request(board, "get_state")["compartments"][label]["door"] == "open", "door")
    request(board, "remove_item", compartment=label)
    request(board, "close_door", compartment=label)
    watch.wait("completed")


def _armed(factory: sessionmaker[Session], order_id: str) -> bool:
    """The locker acknowledged the pickup command of this order's booking."""
    with factory() as session:
        booking = _booking_of(session, order_id)
        return any(
            c.type == "arm_pickup" and c.ref == f"booking:{booking.id}"
            for c in _done(factory, booking.locker_id)
        )


def _done(factory: sessionmaker[Session], locker_id: str) -> list[OutboxCommand]:
    """Commands this demo's locker has acked (the database may hold other lockers' too)."""
    done = select(OutboxCommand).where(
        OutboxCommand.status == "done", OutboxCommand.locker_id == locker_id
    )
    with factory() as session:
        return list(session.scalars(done))
