"""Demo step: a simulated chilled locker's compressor fails; the scan raises the excursion,
holds the order inside, and ops see it on the dashboard (rendered once in headless Chromium,
and the URL printed for the live page)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from tuanbox.settings import Settings

DEMO_MINUTES = 180  # three hours of one-minute readings, ending now
FAILS_AT_MIN = 100  # the compressor of chilled 0-1 dies here: +0.25 °C/min up to 11 °C


def cold_chain(settings: Settings) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from firmware_sim.profiles import compressor_failure, door_spikes, steady
    from telemetry.influx import InfluxClient
    from telemetry.retention import apply_retention
    from telemetry.schema import cold_chain_point, door_point, locker_health_point, to_ns
    from telemetry.settings import TelemetrySettings
    from tuanbox.accounts.deps import Principal
    from tuanbox.accounts.models import User
    from tuanbox.accounts.tokens import issue_access_token
    from tuanbox.catalog.models import Merchant, Product, Sku
    from tuanbox.coldchain.services import scan
    from tuanbox.db.base import utcnow
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.fulfilment import lifecycle, waves
    from tuanbox.fulfilment.hooks import bind_settings
    from tuanbox.fulfilment.models import Booking, DeliveryWave, FulfilmentOrder
    from tuanbox.lockers.services import CompartmentSpec, create_locker, create_station
    from tuanbox.ops.charts import temperature_svg
    from tuanbox.ops.data import chart_buckets, locker_view, thresholds
    from tuanbox.ops.snapshot import SnapshotUnavailableError, snapshot
    from tuanbox.orders.models import Order
    from tuanbox.orders.services import transition

    telemetry = TelemetrySettings()
    now = utcnow().replace(second=0, microsecond=0)
    t0 = now - timedelta(minutes=DEMO_MINUTES - 1)
    suffix = uuid.uuid4().hex[:6]
    locker_id = f"DEMO-COLD-{suffix}"
    system = Principal(id="system:demo", role="system").actor

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    try:
        with session_scope(factory) as s:
            bind_settings(s, settings)
            station = create_station(
                s,
                id=f"st-cold-{suffix}",
                name="Lakeside Garden lobby",
                address="18 Lakeside Road",
                lat=31.2304,
                lon=121.4737,
            )
            layout = [
                CompartmentSpec(0, 1, "M", "chilled"),
                CompartmentSpec(0, 2, "M", "chilled"),
                CompartmentSpec(0, 3, "M", "frozen"),
                CompartmentSpec(0, 4, "M"),
            ]
            locker, _password = create_locker(s, id=locker_id, station_id=station.id, layout=layout)
            # What the bridge records from the agent's retained status message.
            locker.online, locker.last_seen_at, locker.agent_version = True, now, "0.1.0-demo"
            merchant = Merchant(
                name="Chongming Dairy", licence_number=f"DEMO-{suffix}", verified=True
            )
            s.add(merchant)
            s.flush()
            product = Product(
                merchant_id=merchant.id, name="Fresh milk 1 L", zone="chilled", size_class="S"
            )
            s.add(product)
            s.flush()
            sku = Sku(product_id=product.id, name="1 L", price_cents=1290, stock_on_hand=20)
            shopper = User(role="shopper", display_name="Demo shopper")
            ops = User(role="ops", display_name="Demo ops")
            s.add_all([sku, shopper, ops])
            s.flush()
            order = Order(
                user_id=shopper.id,
                merchant_id=merchant.id,
                sku_id=sku.id,
                qty=1,
                unit_price_cents=1290,
                total_cents=1290,
                paid_cents=1290,
                status="paid",
                station_id=station.id,
            )
            s.add(order)
            s.flush()
            transition(s, order, "confirmed", actor=system, reason="demo: group filled")
            # The demo runs the order's delivery wave now instead of at its courier run.
            wave = s.get(DeliveryWave, order.wave_id)
            if wave is not None:
                waves.allocate_due(
                    s, settings=settings, now=now, due_at=wave.allocate_at, wave_id=wave.id
                )
            fo = s.get(FulfilmentOrder, order.id)
            booking = s.get(Booking, fo.booking_id) if fo and fo.booking_id else None
            if booking is not None:
                ctx = lifecycle.Context(settings, Ed25519PrivateKey.generate())
                lifecycle.deposited(s, booking, ctx=ctx, now=now - timedelta(hours=3))
            order_id, ops_id = order.id, ops.id

        sensors = [
            (
                "0-1",
                "chilled",
                "28-00000a1b2c3d",
                lambda sec: compressor_failure(3.0, FAILS_AT_MIN * 60, 0.25, 11.0, sec),
            ),
            ("0-2", "chilled", "chilled-probe", lambda sec: door_spikes(3.5, 3.0, 1800, 120, sec)),
            ("0-3", "frozen", "frozen-probe", lambda sec: steady(-19.5, sec)),
        ]
        points = []
        for minute in range(DEMO_MINUTES):
            at = t0 + timedelta(minutes=minute)
            for label, zone, sensor, profile in sensors:
                points.append(
                    cold_chain_point(
                        locker=locker_id,
                        compartment=label,
                        zone=zone,
                        sensor=sensor,
                        at=at,
                        celsius=round(profile(minute * 60.0), 2),
                    )
                )
            if minute % 5 == 0:
                points.append(
                    locker_health_point(
                        locker=locker_id,
                        outbox_depth=minute % 3,
                        mqtt_connected=True,
                        uptime_s=minute * 60,
                        dropped_points=0,
                        at=at,
                        agent_version="0.1.0-demo",
                    )
                )
        # The courier's deposit (opened, closed) and a shopper's failed try later on.
        for minute, is_open in ((20, True), (21, False), (95, True), (96, False)):
            points.append(
                door_point(
                    locker=locker_id,
                    compartment="0-1",
                    is_open=is_open,
                    at=t0 + timedelta(minutes=minute),
                )
            )
        with InfluxClient.from_settings(telemetry) as influx:
            apply_retention(influx, telemetry)
            influx.write(points, precision="s")
            with session_scope(factory) as s:
                report = scan(
                    s,
                    influx,
                    telemetry,
                    now=now,
                    command_ttl_s=settings.command_ttl_s,
                    never_reported_after_min=settings.coldchain_silence_minutes,
                )
            if not report.raised:
                raise RuntimeError("the compressor failure did not raise an excursion")
            # What the dashboard will show, checked now (the API may not be running yet), and
            # the chart saved beside the SQLite file so it can be opened without a server.
            with factory() as s:
                view = locker_view(s, influx, locker_id, now, 24)
            if view is None or not any(c.excursion for c in view.compartments):
                raise RuntimeError("the locker page would not show the excursion")
            buckets, step = chart_buckets(influx, locker_id, "0-1", t0, now + timedelta(minutes=1))
        chart = Path("var") / "demo" / f"{locker_id}-0-1.svg"
        chart.parent.mkdir(parents=True, exist_ok=True)
        chart.write_text(
            temperature_svg(buckets, start_ns=to_ns(t0), end_ns=to_ns(now + timedelta(minutes=1)),
                            thresholds=thresholds("chilled"), max_gap_s=3 * step,
                            title=f"{locker_id} · 0-1 · chilled · compressor failure"),
            encoding="utf-8",
        )  # fmt: skip
    finally:
        engine.dispose()

    long_lived = settings.model_copy(update={"access_token_ttl_s": 8 * 3600})
    token = issue_access_token(long_lived, Principal(id=ops_id, role="ops"))
    base = settings.public_base_url.rstrip("/")
    held = (
        "order " + order_id[:8] + " on quality hold"
        if order_id in report.held_orders
        else ("no order held")
    )
    page = f"/ops/lockers/{locker_id}"
    try:
        png = snapshot(settings, token, page, chart.with_suffix(".png"))
        shot = f"rendered by headless Chromium to {png}"
    except SnapshotUnavailableError as exc:
        shot = f"no browser snapshot ({exc})"
    return (
        f"{len(points)} points written for locker {locker_id}; excursion "
        f"#{report.raised[0]} raised on chilled 0-1, {held}. Ops locker page {shot}; live: "
        f"`tuanbox api`, then {base}/ops/login?token={token} and {base}{page} "
        f"(chart also saved to {chart})"
    )
