"""Co-occurrence counts on PostgreSQL: the increments equal a full rebuild over random
histories (with replays and returns), and the order hooks count once and take back once."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.coupons.support import SYSTEM, pay, pick_up
from tests.platform.factories import make_merchant, make_order, make_product, make_sku, make_user
from tests.platform.recommend.support import set_status, snapshot
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.models import load_all_models
from tuanbox.orders import hooks
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.orders.services import transition
from tuanbox.recommend import domain, services
from tuanbox.recommend.models import RecItem, RecOrder, RecPair
from tuanbox.settings import Settings

REC_TABLES = {"rec_orders", "rec_user_items", "rec_items", "rec_pairs", "rec_station_days"}


def test_recommend_tables_have_no_drift(engine: Engine) -> None:
    def ours(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return getattr(table, "name", name) in REC_TABLES

    metadata = load_all_models()
    assert set(metadata.tables) >= REC_TABLES
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": ours}
        )
        assert compare_metadata(context, metadata) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_increments_equal_a_full_rebuild(db_session: Session, seed: int) -> None:
    rng = random.Random(seed)
    merchant = make_merchant(db_session)
    products = [make_product(db_session, merchant) for _ in range(7)]
    skus = [make_sku(db_session, p) for p in products]
    # Two SKUs of one product: both are the same item.
    skus.append(make_sku(db_session, products[0]))
    users = [make_user(db_session) for _ in range(12)]
    stations = ["st-a", "st-b", None]
    start = utcnow() - timedelta(days=3)
    orders: list[Order] = []
    for _ in range(70):
        order = make_order(db_session, user=rng.choice(users), sku=rng.choice(skus), reserve=False)
        order.station_id = rng.choice(stations)
        orders.append(order)
    events: list[tuple[str, Order]] = []
    for order in orders:
        if rng.random() < 0.85:
            events.append(("pick", order))
            if rng.random() < 0.25:
                events.append(("return", order))
    rng.shuffle(events)
    # A return comes after its pickup; replays (pickup or return again) may come anywhere later.
    ordered = sorted(events, key=lambda e: e[0] == "return")
    ordered += [rng.choice(ordered) for _ in range(30)]

    counted: dict[str, bool] = {}
    for step, (kind, order) in enumerate(ordered):
        at = start + timedelta(hours=step)
        if kind == "pick":
            if order.id not in counted:
                set_status(db_session, order, "picked_up", at)
            first = services.record(
                db_session,
                order_id=order.id,
                user_id=order.user_id,
                product_id=services.product_of(db_session, order.sku_id),
                station_id=order.station_id,
                at=db_session.scalar(
                    select(func.min(OrderTransition.at)).where(
                        OrderTransition.order_id == order.id,
                        OrderTransition.to_status == "picked_up",
                    )
                ),
            )
            assert first == (order.id not in counted)
            counted.setdefault(order.id, True)
        else:
            if order.status == "picked_up":
                set_status(db_session, order, "return_requested", at)
                set_status(db_session, order, "returned", at)
            was_counted = counted.get(order.id, False)
            assert services.take_back(db_session, order.id) == was_counted
            counted[order.id] = False

    incremental = snapshot(db_session)
    assert incremental["pairs"], "the random history should make some pairs"
    kept = sum(1 for o in orders if o.status == "picked_up")
    assert services.rebuild(db_session) == kept
    assert snapshot(db_session) == incremental
    # And the pairs are what the pure full count makes from the kept histories.
    histories: dict[str, set[str]] = {}
    for o in orders:
        if o.status == "picked_up":
            histories.setdefault(o.user_id, set()).add(services.product_of(db_session, o.sku_id))
    assert incremental["pairs"] == domain.all_pairs(histories)


def test_hooks_count_once_and_take_back_once(db_session: Session, settings: Settings) -> None:
    shopper = make_user(db_session)
    a, b = make_sku(db_session, stock=100), make_sku(db_session, stock=100)
    first = pay(db_session, settings, make_order(db_session, user=shopper, sku=a))
    first.station_id = "st-1"
    pick_up(db_session, first)
    second = pay(db_session, settings, make_order(db_session, user=shopper, sku=b))
    pick_up(db_session, second)

    def pair() -> int | None:
        return db_session.scalar(
            select(RecPair.shoppers).where(
                RecPair.product_a == a.product_id, RecPair.product_b == b.product_id
            )
        )

    assert pair() == 1
    before = snapshot(db_session)
    # What the hooks counted (at picked_up_at) is what a rebuild from the orders counts.
    assert services.rebuild(db_session) == 2
    assert snapshot(db_session) == before
    # A retried hook, a replayed transition: nothing more is counted.
    hooks.run(db_session, second, "ready_for_pickup")
    hooks.run(db_session, first, "ready_for_pickup")
    assert snapshot(db_session) == before
    assert (db_session.scalar(select(func.count()).select_from(RecOrder)) or 0) >= 2

    # Returned: taken back, once, however often the hooks run (returned, then refunded).
    transition(db_session, second, "return_requested", actor=SYSTEM, reason="test")
    transition(db_session, second, "returned", actor=SYSTEM, reason="test")
    assert pair() == 0
    hooks.run(db_session, second, "return_requested")
    db_session.refresh(second)
    second.status = "refunded"
    hooks.run(db_session, second, "returned")
    assert pair() == 0
    assert db_session.scalar(select(RecItem.buyers).where(RecItem.product_id == b.product_id)) == 0
    # A late replay of the pickup does not count it again either.
    second.status = "picked_up"
    hooks.run(db_session, second, "ready_for_pickup")
    assert pair() == 0


def test_one_shoppers_orders_counted_at_once_lose_no_pair(
    fresh_database: Callable[[], str],
) -> None:
    """Two of a shopper's orders picked up in two transactions at the same moment: each must
    see the other's product (the per-shopper lock), or the pair is never counted."""
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url, pool_size=8, max_overflow=0)
    factory = make_session_factory(engine, settings)
    try:
        products = [f"p-{i}" for i in range(6)]
        barrier = threading.Barrier(len(products))
        errors: list[BaseException] = []

        def pick(i: int) -> None:
            try:
                with factory() as session:
                    barrier.wait(timeout=30)
                    services.record(
                        session,
                        order_id=f"o-{i}",
                        user_id="u-1",
                        product_id=products[i],
                        station_id="st",
                        at=utcnow(),
                    )
                    session.commit()
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=pick, args=(i,)) for i in range(len(products))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        with factory() as session:
            counts = snapshot(session)
        assert counts["pairs"] == domain.all_pairs({"u-1": products})
        assert counts["items"] == dict.fromkeys(products, 1)
    finally:
        engine.dispose()
