"""Cold-chain test data: a locker with deposited orders, and a compressor failure in InfluxDB.

The readings go through the real edge writer (edge.agent: line builder, SQLite buffer,
forwarder, InfluxDB v1 sink), exactly as a locker would send them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from edge.agent import schema as edge_schema
from edge.agent.store import Store
from edge.agent.telemetry import InfluxV1Sink, TelemetryBuffer, TelemetryForwarder
from firmware_sim.profiles import compressor_failure, steady
from telemetry.influx import InfluxClient
from telemetry.settings import TelemetrySettings
from tests.platform.fulfilment.fx import (
    confirm,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.coldchain.services import ScanReport, scan
from tuanbox.fulfilment import lifecycle
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

LAYOUT = [
    CompartmentSpec(0, 1, "M", "chilled"),
    CompartmentSpec(0, 2, "M", "chilled"),
    CompartmentSpec(0, 3, "M", "frozen"),
]


@dataclass
class Site:
    locker_id: str
    failing: Order  # deposited in chilled 0-1, which fails
    healthy: Order  # deposited in chilled 0-2, which stays cold
    bookings: dict[str, Booking]


def deposit_one(
    session: Session, settings: Settings, sku_zone: str, station_id: str, at: datetime | None = None
) -> Order:
    order = make_order(session, user=make_shopper(session), sku=make_sku(session, "S", sku_zone),
                       station_id=station_id)  # fmt: skip
    confirm(session, order)
    fo = session.get(FulfilmentOrder, order.id)
    assert fo is not None
    assert fo.booking_id is not None, fo.exception_reason
    booking = session.get(Booking, fo.booking_id)
    assert booking is not None
    ctx = lifecycle.Context(settings=settings, signing_key=Ed25519PrivateKey.generate())
    assert lifecycle.deposited(session, booking, ctx=ctx, now=at or datetime.now(UTC))
    session.refresh(order)
    assert order.status == "ready_for_pickup"
    return order


def make_site(session: Session, settings: Settings, deposited_at: datetime | None = None) -> Site:
    """One locker; two chilled orders deposited in chilled compartments 0-1 and 0-2."""
    bind_settings(session, settings)
    station = make_station(session)
    locker, _password = make_locker(session, station.id, LAYOUT)
    orders: dict[str, Order] = {}
    bookings: dict[str, Booking] = {}
    for _ in range(2):
        order = deposit_one(session, settings, "chilled", station.id, deposited_at)
        fo = session.get(FulfilmentOrder, order.id)
        assert fo is not None
        booking = session.get(Booking, fo.booking_id)
        assert booking is not None
        comp = session.get(Compartment, booking.compartment_id)
        assert comp is not None
        orders[comp.label], bookings[comp.label] = order, booking
    assert set(orders) == {"0-1", "0-2"}
    return Site(locker.id, orders["0-1"], orders["0-2"], bookings)


def failing_profile(elapsed_s: float) -> float:
    """Chilled 0-1: 3 °C; compressor fails at minute 30 (+0.25 °C/min, capped at 10 °C);
    repaired at minute 90, cooling 1 °C/min back to 3 °C."""
    if elapsed_s < 90 * 60:
        return compressor_failure(3.0, 30 * 60, 0.25, 10.0, elapsed_s)
    return max(3.0, 10.0 - (elapsed_s - 90 * 60) / 60)


def write_through_edge(
    tmp_path: Path,
    influx_url: str,
    database: str,
    locker_id: str,
    t0: datetime,
    minutes: int,
    *,
    silent_after: dict[str, int] | None = None,
    sensors: Sequence[tuple[str, str, str, Callable[[float], float]]] | None = None,
) -> int:
    """Sample every sensor once a minute for ``minutes`` and forward it all; returns points.

    ``sensors`` are (compartment, zone, sensor id, profile of elapsed seconds); by default
    chilled 0-1 fails and recovers (``failing_profile``), chilled 0-2 and frozen 0-3 are steady.
    """
    sensors = sensors or [
        ("0-1", "chilled", "28-00000a1b2c3d", failing_profile),
        ("0-2", "chilled", "chilled-probe", lambda s: steady(3.5, s)),
        ("0-3", "frozen", "frozen-probe", lambda s: steady(-19.5, s)),
    ]
    silent_after = silent_after or {}
    store = Store(tmp_path / f"edge-{uuid.uuid4().hex[:6]}.sqlite3")
    buffer = TelemetryBuffer(store, max_rows=100_000)
    lines = []
    for minute in range(minutes):
        at_ms = int((t0 + timedelta(minutes=minute)).timestamp() * 1000)
        for label, zone, sensor, profile in sensors:
            if minute >= silent_after.get(label, minutes):
                continue
            lines.append(edge_schema.cold_chain(locker_id, label, zone, sensor, at_ms,
                                                round(profile(minute * 60.0), 3)))  # fmt: skip
    buffer.append(lines)
    forwarder = TelemetryForwarder(buffer, InfluxV1Sink(influx_url, database), batch_size=500,
                                   flush_interval_s=0.1)  # fmt: skip
    sent = 0
    while True:
        n = forwarder.flush_once()
        if n == 0:
            break
        sent += n
    forwarder.sink.close()
    assert forwarder.rejected == 0
    return sent


def run_scans(
    session: Session, telemetry: TelemetrySettings, t0: datetime, minutes: range
) -> dict[int, ScanReport]:
    """A scan every few minutes of scenario time, as beat would run it (each one committed)."""
    reports = {}
    with InfluxClient.from_settings(telemetry) as influx:
        for minute in minutes:
            reports[minute] = scan(session, influx, telemetry, now=t0 + timedelta(minutes=minute))
            session.commit()
    return reports


@pytest.fixture
def telemetry(influx_url: str) -> Iterator[TelemetrySettings]:
    name = f"tuanbox_t_{uuid.uuid4().hex[:12]}"
    settings = TelemetrySettings(_env_file=None, influx_url=influx_url, influx_database=name)
    with InfluxClient.from_settings(settings) as client:
        client.create_database()
        yield settings
        client.drop_database()


@pytest.fixture
def t0() -> datetime:
    """Scenario start: four hours ago, on a whole minute."""
    return (datetime.now(UTC) - timedelta(hours=4)).replace(second=0, microsecond=0)
