"""Many confirmations racing on their own connections never book one compartment twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from sqlalchemy import select

from tests.conftest import make_settings
from tests.platform.fulfilment.fx import (
    confirm,
    make_locker,
    make_order,
    make_shopper,
    make_sku,
    make_station,
)
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.lockers.models import Compartment
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order

ORDERS = 24
LAYOUT = [CompartmentSpec(0, lock, ("S", "M", "L")[lock % 3]) for lock in range(1, 9)]


def test_racing_allocations_book_each_compartment_at_most_once(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    engine = make_engine(url, pool_size=ORDERS, max_overflow=0)
    factory = make_session_factory(engine, make_settings(database_url=url))
    with session_scope(factory) as session:
        station = make_station(session)
        make_locker(session, station.id, LAYOUT)
        sku = make_sku(session, "S")
        order_ids = [
            make_order(session, user=make_shopper(session), sku=sku, station_id=station.id).id
            for _ in range(ORDERS)
        ]
    barrier = threading.Barrier(ORDERS)
    errors: list[BaseException] = []

    def worker(order_id: str) -> None:
        try:
            with session_scope(factory) as session:
                order = session.get(Order, order_id)
                assert order is not None
                barrier.wait(10)
                confirm(session, order)
        except BaseException as exc:  # collected and re-raised by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(oid,)) for oid in order_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors

    with session_scope(factory) as session:
        bookings = session.scalars(select(Booking)).all()
        per_compartment = Counter(b.compartment_id for b in bookings)
        assert per_compartment and max(per_compartment.values()) == 1
        assert len(bookings) == len(LAYOUT)
        states = Counter(session.scalars(select(FulfilmentOrder.state)).all())
        assert states == {"booked": len(LAYOUT), "queued": ORDERS - len(LAYOUT)}
        reserved = session.scalars(select(Compartment).where(Compartment.state == "reserved")).all()
        assert len(reserved) == len(LAYOUT)
        statuses = Counter(session.scalars(select(Order.status)).all())
        assert statuses == {"allocated": len(LAYOUT), "confirmed": ORDERS - len(LAYOUT)}
    engine.dispose()
