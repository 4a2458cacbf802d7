"""Demo step: a confirmed order travels through a simulated locker to a completed pickup.

The real edge agent runs as a subprocess (`tuanbox-edge demo`: firmware_sim lock board and
scanner on ptys), the bridge runs in this process, the database is the demo's (SQLite by
default). Each order transition is printed as it happens.
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
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.accounts.models import User
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.devservices.mqtt import clear_retained
from tuanbox.dispatch.bridge import Bridge, forget_session
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment import pickup
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.lifecycle import Context
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.fulfilment.provisioning import provision_locker
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import create_station, standard_layout
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.settings import Settings

DEMO_ACTOR = Actor(id="demo", role="system")


def _until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _seed(session: Session, settings: Settings, locker_id: str) -> str:
    """A station, a locker, a shopper and a paid chilled order; returns the order id."""
    from tuanbox.orders.services import transition

    station = create_station(
        session, id=f"st-{locker_id}", name="Demo lobby", address="1 Demo Road", lat=31.23,
        lon=121.47, opening_notes="24h",
    )  # fmt: skip
    provision_locker(
        session, settings, locker_id=locker_id, station_id=station.id, layout=standard_layout()
    )
    merchant = Merchant(name="Demo farm", licence_number=f"demo-{uuid.uuid4().hex}", verified=True)
    shopper = User(role="shopper", display_name="Demo shopper")
    session.add_all([merchant, shopper])
    session.flush()
    product = Product(merchant_id=merchant.id, name="Yoghurt", size_class="S", zone="chilled")
    session.add(product)
    session.flush()
    sku = Sku(product_id=product.id, name="6-pack", price_cents=1800, stock_on_hand=10)
    session.add(sku)
    session.flush()
    order = Order(
        user_id=shopper.id, merchant_id=merchant.id, sku_id=sku.id, qty=1, unit_price_cents=1800,
        total_cents=1800, paid_cents=1800, status="paid", station_id=station.id,
    )  # fmt: skip
    session.add(order)
    session.flush()
    transition(session, order, "confirmed", actor=DEMO_ACTOR, reason="group filled")
    return order.id


class _Watcher:
    """Prints each new transition of the order (and each command's ack) once."""

    def __init__(self, factory: sessionmaker[Session], order_id: str, locker_id: str) -> None:
        self.factory, self.order_id, self.locker_id = factory, order_id, locker_id
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
                        f"        order {self.order_id[:8]}: {move.from_status} → "
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
    from firmware_sim.control import request

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    locker_id = f"demo-{uuid.uuid4().hex[:8]}"
    ctx = Context(settings, pickup.load_signing_key(settings))
    with session_scope(factory) as session:
        bind_settings(session, settings)
        order_id = _seed(session, settings, locker_id)
    watch = _Watcher(factory, order_id, locker_id)
    watch.status()
    bridge = Bridge(settings, factory, ctx, client_id=f"tuanbox-demo-{locker_id}")
    bridge.start()
    workdir = Path("var/edge-demo") / locker_id
    proc, info = _start_agent(workdir, locker_id, settings, pickup.public_key_b64(ctx.signing_key))
    board, scanner = info["lockboard_control"], info["scanner_control"]
    try:
        with factory() as session:
            booking = _booking_of(session, order_id)
            comp = session.get(Compartment, booking.compartment_id)
            assert comp is not None
            label, code = comp.label, booking.deposit_code
        typer.echo(f"        allocated: locker {locker_id}, {comp.zone} {comp.size} door {label}")
        _until(lambda: any(c.type == "assign" for c in _done(factory, locker_id)), "assign acked")
        watch.status()

        typer.echo(f"        courier types deposit code {code}, loads the parcel, shuts the door")
        request(scanner, "scan", text="*" + code)
        _until(lambda: request(board, "get_state")["compartments"][label]["door"] == "open", "door")
        request(board, "place_item", compartment=label)
        request(board, "close_door", compartment=label)
        watch.wait("ready_for_pickup")
        _until(
            lambda: any(c.type == "arm_pickup" for c in _done(factory, locker_id)),
            "arm_pickup acked",
        )
        watch.status()

        with factory() as session:
            booking = _booking_of(session, order_id)
            token = pickup.token_for(booking, comp, ctx.signing_key)
        qr_file = Path("var/demo-pickup-qr.png")
        qr_file.write_bytes(pickup.render_qr(token, "png"))
        typer.echo(f"        shopper scans the pickup QR (saved to {qr_file}), takes the parcel")
        request(scanner, "scan", text=token)
        _until(lambda: request(board, "get_state")["compartments"][label]["door"] == "open", "door")
        request(board, "remove_item", compartment=label)
        request(board, "close_door", compartment=label)
        watch.wait("completed")
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
    return f"order {order_id[:8]}: " + " → ".join(watch.seen[-5:])


def _done(factory: sessionmaker[Session], locker_id: str) -> list[OutboxCommand]:
    """Commands this demo's locker has acked (the database may hold other lockers' too)."""
    done = select(OutboxCommand).where(
        OutboxCommand.status == "done", OutboxCommand.locker_id == locker_id
    )
    with factory() as session:
        return list(session.scalars(done))
