"""Delivery waves: confirmed orders take the next wave; compartments come when it is due."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header
from tests.platform.fulfilment.fx import (
    TEST_ACTOR,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.accounts.models import User
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.errors import InvalidInputError
from tuanbox.fulfilment import waves
from tuanbox.fulfilment.models import Booking, DeliveryWave, FulfilmentOrder
from tuanbox.fulfilment.schedule import ScheduleError, WaveSchedule, parse_hhmm
from tuanbox.lockers.services import CompartmentSpec, standard_layout
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.settings import Settings

SHANGHAI = WaveSchedule.of("Asia/Shanghai", "22:00", "10:00", 5400)


def _sh(day: int, hh: int, mm: int = 0) -> datetime:
    """A Shanghai wall-clock time in December 2026, as UTC (Shanghai is UTC+8, no DST)."""
    return datetime(2026, 12, day, hh, mm, tzinfo=UTC) - timedelta(hours=8)


def test_before_the_cutoff_ships_next_morning_at_or_after_it_the_day_after() -> None:
    wave = SHANGHAI.next_wave(_sh(7, 21, 59))
    assert wave.date == date(2026, 12, 8)
    assert wave.cutoff_at == _sh(7, 22) and wave.departs_at == _sh(8, 10)
    assert wave.allocate_at == _sh(8, 8, 30)  # 90 minutes before the run, after the cutoff
    assert SHANGHAI.next_wave(_sh(7, 22)).date == date(2026, 12, 9)
    assert SHANGHAI.next_wave(_sh(8, 1)).date == date(2026, 12, 9)  # after midnight, same wave


def test_a_cutoff_before_the_departure_ships_the_same_day() -> None:
    same_day = WaveSchedule.of("Asia/Shanghai", "10:00", "15:00", 3 * 3600)
    assert same_day.next_wave(_sh(7, 9, 59)).date == date(2026, 12, 7)
    assert same_day.next_wave(_sh(7, 10)).date == date(2026, 12, 8)
    # A lead longer than the gap never allocates before the cutoff.
    assert same_day.next_wave(_sh(7, 9)).allocate_at == _sh(7, 12)
    late = WaveSchedule.of("Asia/Shanghai", "14:00", "15:00", 3 * 3600)
    assert late.next_wave(_sh(7, 9)).allocate_at == _sh(7, 14)


def test_local_time_follows_daylight_saving() -> None:
    berlin = WaveSchedule.of("Europe/Berlin", "20:00", "09:00", 3600)
    summer = berlin.next_wave(datetime(2026, 7, 1, 12, tzinfo=UTC))
    winter = berlin.next_wave(datetime(2026, 12, 1, 12, tzinfo=UTC))
    assert summer.cutoff_at.hour == 18 and winter.cutoff_at.hour == 19  # both 20:00 local


@pytest.mark.parametrize("value", ["24:00", "7:00", "07:60", "", "07:00\x00", "٠٧:٠٠"])
def test_times_are_hh_mm(value: str) -> None:
    with pytest.raises(ScheduleError):
        parse_hhmm(value)
    assert parse_hhmm("07:05") == time(7, 5)


def test_settings_refuse_unknown_zones_and_bad_times() -> None:
    with pytest.raises(ValueError, match="IANA"):
        make_settings(station_timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="wave_cutoff"):
        make_settings(wave_cutoff="25:00")


def test_station_schedule_is_validated(db_session: Session) -> None:
    station = make_station(db_session)
    with pytest.raises(InvalidInputError):
        waves.set_schedule(
            db_session, station.id, timezone="Nowhere/City", cutoff=None, departure=None
        )
    with pytest.raises(InvalidInputError):
        waves.set_schedule(db_session, station.id, timezone=None, cutoff="9pm", departure=None)
    waves.set_schedule(
        db_session, station.id, timezone="Asia/Urumqi", cutoff="20:30", departure="08:00"
    )
    assert (station.timezone, station.wave_cutoff, station.wave_departure) == (
        "Asia/Urumqi",
        "20:30",
        "08:00",
    )


def test_confirming_gives_a_wave_not_a_compartment(
    db_session: Session, settings: Settings, client: TestClient
) -> None:
    station = make_station(db_session)
    make_locker(db_session, station.id, standard_layout())
    shopper = make_shopper(db_session)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session), station_id=station.id)
    before = datetime.now(UTC)
    transition(db_session, order, "confirmed", actor=TEST_ACTOR, reason="paid")
    assert order.status == "confirmed" and order.wave_id is not None
    assert db_session.get(FulfilmentOrder, order.id) is None, "no compartment days ahead"
    wave = db_session.get(DeliveryWave, order.wave_id)
    assert wave is not None and wave.station_id == station.id
    expected = waves.schedule_for(station, settings).next_wave(before)
    assert wave.wave_date == expected.date

    r = client.get(f"/api/v1/orders/{order.id}", headers=auth_header(settings, shopper))
    assert r.status_code == 200, r.text
    shown = r.json()["wave"]
    assert shown["id"] == wave.id and shown["wave_date"] == expected.date.isoformat()
    assert shown["allocated_at"] is None

    # Not due yet: the job leaves it; due: it books, once.
    now = datetime.now(UTC)
    assert waves.allocate_due(db_session, settings=settings, now=now) == []
    due = expected.allocate_at
    assert waves.allocate_due(db_session, settings=settings, now=now, due_at=due) == [order.id]
    db_session.refresh(order)
    assert order.status == "allocated"
    assert waves.allocate_due(db_session, settings=settings, now=now, due_at=due) == []
    db_session.refresh(wave)
    assert wave.allocated_at is not None


def test_after_the_cutoff_the_next_days_wave(db_session: Session, settings: Settings) -> None:
    station = make_station(db_session)
    waves.set_schedule(
        db_session, station.id, timezone="Asia/Shanghai", cutoff="22:00", departure="10:00"
    )
    sku = make_sku(db_session)
    early = make_order(db_session, user=make_shopper(db_session), sku=sku, station_id=station.id)
    late = make_order(db_session, user=make_shopper(db_session), sku=sku, station_id=station.id)
    first = waves.assign(db_session, early, settings=settings, now=_sh(7, 21, 30))
    second = waves.assign(db_session, late, settings=settings, now=_sh(7, 22, 5))
    assert first is not None and second is not None
    assert (first.wave_date, second.wave_date) == (date(2026, 12, 8), date(2026, 12, 9))
    again = waves.assign(db_session, late, settings=settings, now=_sh(7, 23))
    assert again is not None and again.id == second.id, "one wave row per station and day"


def test_a_crash_mid_wave_and_two_jobs_at_once_book_each_order_once(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url, pool_size=4)
    factory = make_session_factory(engine, settings)
    try:
        layout = [CompartmentSpec(0, lock, "M") for lock in range(1, 5)]
        with session_scope(factory) as session:
            station = make_station(session)
            make_locker(session, station.id, layout)
            sku = make_sku(session, "S")
            ids = []
            for _ in range(6):
                order = make_order(
                    session, user=make_shopper(session), sku=sku, station_id=station.id
                )
                transition(session, order, "confirmed", actor=TEST_ACTOR, reason="paid")
                ids.append(order.id)
            due = session.get(DeliveryWave, order.wave_id).allocate_at  # type: ignore[union-attr]

        # A job that dies after its first batch: its work rolls back, nothing half-booked.
        with factory() as session:
            done = waves.allocate_due(
                session, settings=settings, now=datetime.now(UTC), due_at=due, limit=2
            )
            assert len(done) == 2
            session.rollback()

        errors: list[BaseException] = []

        def job() -> None:
            try:
                waves.run(factory, settings, due_at=due, batch=2)
            except BaseException as exc:  # re-raised by the test thread
                errors.append(exc)

        threads = [threading.Thread(target=job) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert waves.run(factory, settings, due_at=due) == 0, "a second run finds nothing"

        with factory() as session:
            states = Counter(session.scalars(select(FulfilmentOrder.state)).all())
            assert states == {"booked": 4, "queued": 2}
            per_compartment = Counter(session.scalars(select(Booking.compartment_id)).all())
            assert len(per_compartment) == 4 and max(per_compartment.values()) == 1
            statuses = Counter(session.scalars(select(Order.status).where(Order.id.in_(ids))).all())
            assert statuses == {"allocated": 4, "confirmed": 2}
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(DeliveryWave)
                    .where(DeliveryWave.allocated_at.is_not(None))
                )
                == 1
            )
    finally:
        engine.dispose()


def test_staff_cannot_see_other_merchants_waves_through_orders(
    db_session: Session, settings: Settings, client: TestClient
) -> None:
    station = make_station(db_session)
    order = make_order(
        db_session, user=make_shopper(db_session), sku=make_sku(db_session), station_id=station.id
    )
    transition(db_session, order, "confirmed", actor=TEST_ACTOR, reason="paid")
    stranger = User(role="shopper", display_name="someone else")
    db_session.add(stranger)
    db_session.flush()
    r = client.get(f"/api/v1/orders/{order.id}", headers=auth_header(settings, stranger))
    assert r.status_code == 404
