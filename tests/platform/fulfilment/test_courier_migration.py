"""Migration 0010 on PostgreSQL and SQLite: courier role, bookings' merchant backfilled, no loss."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import Session

from tests.platform.fulfilment.fx import (
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.accounts.models import Address, User
from tuanbox.crypto import PiiCipher
from tuanbox.db.engine import make_engine
from tuanbox.db.migrate import alembic_config, upgrade
from tuanbox.fulfilment import codes
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

BEFORE, THIS = "0009_bounds", "0010_courier_role"


def _booking(session: Session, comp_index: int, orders: list[Order], locker_id: str) -> str:
    comp = session.scalars(
        sa.select(Compartment).where(Compartment.locker_id == locker_id).order_by(Compartment.id)
    ).all()[comp_index]
    ref = str(uuid.uuid4())
    booking = Booking(
        ref=ref,
        compartment_id=comp.id,
        locker_id=locker_id,
        station_id=comp.locker.station_id,
        user_id=orders[0].user_id if orders else "nobody",
        zone="ambient",
        units_used=len(orders),
        state="reserved",
        deposit_code_enc=codes.seal(PiiCipher(Settings()), ref, "deposit", "123456"),
    )
    session.add(booking)
    session.flush()
    for order in orders:
        session.add(
            FulfilmentOrder(
                order_id=order.id,
                user_id=order.user_id,
                station_id=booking.station_id,
                zone="ambient",
                units=1,
                state="booked",
                booking_id=booking.id,
            )
        )
    session.flush()
    return booking.ref


@pytest.fixture(params=["postgresql", "sqlite"])
def migrated_url(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_database: Callable[[], str]
) -> str:
    if request.param == "postgresql":
        return fresh_database()
    url = f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
    upgrade(url)
    return url


def test_migration_backfills_bookings_keeps_data_and_refuses_to_drop_couriers(
    migrated_url: str,
) -> None:
    engine = make_engine(migrated_url)
    try:
        with Session(engine) as session:
            station = make_station(session)
            locker, _ = make_locker(
                session, station.id, [CompartmentSpec(0, i, "M") for i in range(1, 4)]
            )
            shopper = make_shopper(session)
            session.add(Address(user_id=shopper.id, label="home", address_enc="sealed"))
            sku_a, sku_b = make_sku(session), make_sku(session)
            a1, a2 = (
                make_order(session, user=shopper, sku=sku_a, station_id=station.id) for _ in "12"
            )
            b = make_order(session, user=shopper, sku=sku_b, station_id=station.id)
            only_a = _booking(session, 0, [a1], locker.id)
            mixed = _booking(session, 1, [a2, b], locker.id)  # as allocation used to allow
            empty = _booking(session, 2, [], locker.id)
            merchant_a, shopper_id = a1.merchant_id, shopper.id
            session.commit()
        engine.dispose()

        cfg = alembic_config(migrated_url)
        command.downgrade(cfg, BEFORE)
        command.upgrade(cfg, THIS)

        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT ref, merchant_id FROM compartment_bookings"))
            merchants: dict[str, str | None] = {ref: merchant for ref, merchant in rows}
            assert merchants == {only_a: merchant_a, mixed: None, empty: None}
            # SQLite rebuilt `users` to change its CHECK: the cascade must not have fired.
            addresses = conn.execute(
                sa.text("SELECT COUNT(*) FROM addresses WHERE user_id = :u"), {"u": shopper_id}
            )
            assert addresses.scalar() == 1
        engine.dispose()

        command.upgrade(cfg, "head")
        with Session(engine) as session:
            session.add(User(role="courier", merchant_id=merchant_a, login="courier.mig"))
            session.commit()
        engine.dispose()
        with pytest.raises(RuntimeError, match="courier account"):
            command.downgrade(cfg, BEFORE)
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM users WHERE role = 'courier'"))
        engine.dispose()
        command.downgrade(cfg, BEFORE)
        with engine.connect() as conn, pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text(
                    "INSERT INTO users (id, role, active, created_at, updated_at)"
                    " VALUES ('c2', 'courier', true, '2026-01-01', '2026-01-01')"
                )
            )
    finally:
        engine.dispose()
