"""Delivery waves: a confirmed order takes its station's next wave; due waves get compartments.

Allocation is a scan, not a timer: every run books the confirmed orders of every wave whose
`allocate_at` has come and that have no fulfilment row yet. Orders are taken with
``FOR UPDATE SKIP LOCKED`` and each batch commits, so two runs at once share the work, a run
that dies mid-way leaves the rest for the next one, and running twice books nothing twice
(`allocation.allocate` is idempotent per order). An order whose confirmation commits just
after a run is picked up by the next.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.accounts.models import new_id
from tuanbox.db.base import utcnow
from tuanbox.db.engine import session_scope
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.fulfilment import alerts
from tuanbox.fulfilment.allocation import allocate
from tuanbox.fulfilment.models import DeliveryWave, FulfilmentOrder
from tuanbox.fulfilment.schedule import ScheduleError, Wave, WaveSchedule, parse_hhmm, zone
from tuanbox.lockers.models import Station
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.fulfilment.waves")


def schedule_for(station: Station, settings: Settings) -> WaveSchedule:
    """The station's own wave times, or the deployment's where it sets none."""
    return WaveSchedule.of(
        station.timezone or settings.station_timezone,
        station.wave_cutoff or settings.wave_cutoff,
        station.wave_departure or settings.wave_departure,
        settings.wave_allocate_lead_s,
    )


def set_schedule(
    session: Session,
    station_id: str,
    *,
    timezone: str | None,
    cutoff: str | None,
    departure: str | None,
) -> Station:
    """Set (or with None, reset to the deployment's) a station's zone and wave times.

    Orders already in a wave keep it; orders confirmed from now on follow the new times.
    """
    station = session.get(Station, station_id)
    if station is None:
        raise NotFoundError(f"no station {station_id}", field="station_id")
    try:
        if timezone is not None:
            zone(timezone)
        for field, value in (("cutoff", cutoff), ("departure", departure)):
            if value is not None:
                try:
                    parse_hhmm(value)
                except ScheduleError as exc:
                    raise InvalidInputError(str(exc), field=field) from exc
    except ScheduleError as exc:
        raise InvalidInputError(str(exc), field="timezone") from exc
    station.timezone, station.wave_cutoff, station.wave_departure = timezone, cutoff, departure
    session.flush()
    return station


def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def wave_row(session: Session, station_id: str, plan: Wave) -> DeliveryWave:
    """The station's wave of `plan.date`, created once even when confirmations race."""
    session.execute(
        _insert(session)(DeliveryWave)
        .values(
            id=new_id(),
            station_id=station_id,
            wave_date=plan.date,
            cutoff_at=plan.cutoff_at,
            departs_at=plan.departs_at,
            allocate_at=plan.allocate_at,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["station_id", "wave_date"]),
        execution_options={"synchronize_session": False},
    )
    wave = session.scalars(
        select(DeliveryWave).where(
            DeliveryWave.station_id == station_id, DeliveryWave.wave_date == plan.date
        )
    ).one()
    return wave


def assign(
    session: Session, order: Order, *, settings: Settings, now: datetime
) -> DeliveryWave | None:
    """Put a confirmed order in its station's next wave (by `now` against the cutoff)."""
    station = session.get(Station, order.station_id) if order.station_id else None
    if station is None:
        alerts.open_alert(
            session,
            kind="not_allocatable",
            locker_id=None,
            compartment_id=None,
            order_id=order.id,
            detail=f"order {order.id} cannot ship: no station {order.station_id!r}",
        )
        return None
    wave = wave_row(session, station.id, schedule_for(station, settings).next_wave(now))
    order.wave_id = wave.id
    session.flush()
    return wave


def allocate_due(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    due_at: datetime | None = None,
    wave_id: str | None = None,
    limit: int = 100,
) -> list[str]:
    """One batch: book the confirmed orders of waves due by `due_at` (default `now`).

    `now` stamps what is written (commands, bookings); `due_at` only picks the waves, so the
    demo can run tomorrow's wave today while commands still carry the real clock. `wave_id`
    limits the batch to one wave.
    """
    due = due_at or now
    query = (
        select(Order.id)
        .join(DeliveryWave, DeliveryWave.id == Order.wave_id)
        .where(
            Order.status == "confirmed",
            DeliveryWave.allocate_at <= due,
            ~exists().where(FulfilmentOrder.order_id == Order.id),
        )
        # First paid, first served within a wave; earlier waves first.
        .order_by(DeliveryWave.departs_at, Order.paid_at, Order.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Order)
    )
    if wave_id is not None:
        query = query.where(Order.wave_id == wave_id)
    ids = session.scalars(query).all()
    waves: set[str] = set()
    for order_id in ids:
        order = session.get(Order, order_id)
        assert order is not None  # locked above
        allocate(session, order, settings=settings, now=now)
        if order.wave_id:
            waves.add(order.wave_id)
    if waves:
        session.execute(
            update(DeliveryWave)
            .where(DeliveryWave.id.in_(waves), DeliveryWave.allocated_at.is_(None))
            .values(allocated_at=now),
            execution_options={"synchronize_session": False},
        )
    return list(ids)


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime | None = None,
    due_at: datetime | None = None,
    wave_id: str | None = None,
    batch: int = 100,
) -> int:
    """Allocate every due wave (or just `wave_id`), one committed batch at a time; returns
    the orders handled."""
    from tuanbox.fulfilment.hooks import bind_settings  # hooks imports this module

    total = 0
    while True:
        with session_scope(factory) as session:
            bind_settings(session, settings)
            done = allocate_due(
                session,
                settings=settings,
                now=now or utcnow(),
                due_at=due_at,
                wave_id=wave_id,
                limit=batch,
            )
        total += len(done)
        if len(done) < batch:
            if total:
                log.info("allocated %d orders of due delivery waves", total)
            return total
