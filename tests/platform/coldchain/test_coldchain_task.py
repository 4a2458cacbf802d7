"""The Celery task as beat runs it: registered, scheduled, and idempotent across runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from telemetry.influx import InfluxClient
from telemetry.schema import cold_chain_point
from telemetry.settings import TelemetrySettings
from tests.conftest import make_settings
from tests.platform.coldchain.fx import make_site
from traceability.identifiers import check_digit
from tuanbox.catalog.models import Lot, Sku
from tuanbox.coldchain.models import Episode
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.trace.models import TraceEvent
from tuanbox.worker.app import BEAT_SCHEDULE, TASK_MODULES, create_celery


def test_scan_task_is_registered_and_scheduled_every_minute() -> None:
    assert "tuanbox.coldchain.tasks" in TASK_MODULES
    assert BEAT_SCHEDULE["coldchain.scan"] == {"task": "coldchain.scan", "schedule": 60.0}


def test_scan_task_raises_once_over_runs(
    fresh_database: Callable[[], str], telemetry: TelemetrySettings, tmp_path: Path
) -> None:
    settings = make_settings(database_url=fresh_database())
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        site = make_site(session, settings)
        sku = session.get(Sku, site.failing.sku_id)
        assert sku is not None
        gtin = "690123400001" + check_digit("690123400001")
        session.add(Lot(product_id=sku.product_id, gtin=gtin, lot_code="BERRY-0042"))
        session.commit()
    # The last 20 minutes of chilled 0-1: 3 °C, then 13 °C (above the 12 °C hard limit).
    now = datetime.now(UTC).replace(microsecond=0)
    points = [
        cold_chain_point(locker=site.locker_id, compartment="0-1", zone="chilled",
                         sensor="28-1", celsius=3.0 if m < 17 else 13.0,
                         at=now - timedelta(minutes=20 - m))
        for m in range(20)
    ]  # fmt: skip
    with InfluxClient.from_settings(telemetry) as influx:
        influx.write(points, precision="s")

    import tuanbox.coldchain.tasks  # noqa: F401 - registers the shared task

    app = create_celery(settings)
    app.conf.telemetry_settings = telemetry
    task = app.tasks["coldchain.scan"]
    first = task.apply().get()
    assert first["raised"] != []
    assert first["held_orders"] == [site.failing.id]
    second = task.apply().get()
    assert second["raised"] == []
    assert second["compartments"] == 1

    with make_session_factory(engine)() as session:
        (episode,) = session.scalars(select(Episode)).all()
        assert episode.rule == "hard_limit"
        assert episode.raised_at == now - timedelta(minutes=3)
        kinds = session.scalars(select(OpsAlert.kind)).all()
        assert kinds == ["cold_chain_excursion"]
        # The excursion is in the lot's trace history, as an EPCIS sensor event.
        (record,) = episode.provenance
        assert record["lot"] == [gtin, "BERRY-0042"]
        assert record["order_ids"] == [site.failing.id]
        event = session.get(TraceEvent, record["trace_event_id"])
        assert event is not None
        assert event.event_hash == record["event_hash"]
    engine.dispose()


def test_a_second_scan_while_one_runs_is_skipped(
    fresh_database: Callable[[], str], telemetry: TelemetrySettings
) -> None:
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from tuanbox.coldchain.services import _SCAN_LOCK_KEY, scan

    engine = make_engine(make_settings(database_url=fresh_database()).database_url)
    with engine.connect() as running, InfluxClient.from_settings(telemetry) as influx:
        running.begin()
        running.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCAN_LOCK_KEY})
        with Session(engine) as other:
            assert scan(other, influx, telemetry, now=datetime.now(UTC)).skipped
        running.rollback()
        with Session(engine) as after:
            assert not scan(after, influx, telemetry, now=datetime.now(UTC)).skipped
    engine.dispose()


def test_a_real_worker_runs_the_scan_through_redis(
    fresh_database: Callable[[], str], telemetry: TelemetrySettings, redis_url: str
) -> None:
    """Sent through the Redis broker to a worker thread, as beat does (own queue name)."""
    import uuid

    from celery.contrib.testing.worker import start_worker

    import tuanbox.coldchain.tasks  # noqa: F401 - registers the shared task

    settings = make_settings(database_url=fresh_database(), redis_url=redis_url)
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        site = make_site(session, settings)
        session.commit()
    now = datetime.now(UTC).replace(microsecond=0)
    with InfluxClient.from_settings(telemetry) as influx:
        influx.write([cold_chain_point(locker=site.locker_id, compartment="0-1", zone="chilled",
                                       sensor="28-1", celsius=12.5,
                                       at=now - timedelta(minutes=1))], precision="s")  # fmt: skip
    app = create_celery(settings)
    app.conf.telemetry_settings = telemetry
    app.conf.task_default_queue = f"test-coldchain-{uuid.uuid4().hex[:8]}"
    with start_worker(app, perform_ping_check=False, queues=[app.conf.task_default_queue]):
        report = app.send_task("coldchain.scan").get(timeout=60)
    assert report["held_orders"] == [site.failing.id]
    engine.dispose()
