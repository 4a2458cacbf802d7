"""Tab counters (`order_tab_counts` plus the deltas a trigger appends in the orders' own
transactions, `counters`): the SQL tab of every state is `tab_of`'s, they stay exact under
concurrent transitions and inserts, the console reads them, and reconciliation rebuilds
them."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

from sqlalchemy import Engine, select, text, update
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tests.platform.groupbuy.factories import engines  # noqa: F401
from tests.platform.merchant_orders.fx import put_order
from tuanbox.audit.services import Actor
from tuanbox.db.engine import make_session_factory
from tuanbox.merchant_orders.counters import compact_tab_counts
from tuanbox.merchant_orders.listing import (
    OrderFilter,
    Scope,
    counted_tabs,
    reconcile_tab_counts,
    tab_counts,
)
from tuanbox.merchant_orders.models import OrderTabCount
from tuanbox.merchant_orders.tabs import Tab, tab_of
from tuanbox.orders.domain import Awaiting, OrderStatus
from tuanbox.orders.models import Order
from tuanbox.orders.services import create_order, transition
from tuanbox.settings import Settings

OPS = Actor(id="ops-1", role="ops")


def _recount(session: Session, merchant_id: str) -> dict[Tab, int]:
    counts = dict.fromkeys(Tab, 0)
    for status, awaiting, picked in session.execute(
        select(Order.status, Order.awaiting, Order.picked_up_at.is_not(None)).where(
            Order.merchant_id == merchant_id
        )
    ):
        counts[tab_of(status, awaiting, picked)] += 1
    return counts


def test_the_sql_tab_of_every_state_is_tab_of(db_session: Session) -> None:
    for status, awaiting, picked in itertools.product(
        OrderStatus, [None, *Awaiting], [False, True]
    ):
        sql = db_session.scalar(
            text("SELECT order_tab_of(:s, :a, :p)"), {"s": status.value, "a": awaiting, "p": picked}
        )
        assert sql == tab_of(status, awaiting, picked).value, (status, awaiting, picked)


def test_counters_follow_inserts_changes_and_deletes(
    db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    grouping = put_order(db_session, merchant, status="paid", awaiting="group")
    put_order(db_session, merchant, status="pending_payment")
    refunded = put_order(db_session, merchant, status="refunded", picked_up=True)
    scope = Scope(merchant.id, settings, False)
    flt = OrderFilter(tz=settings.station_timezone)
    assert counted_tabs(db_session, merchant.id) == _recount(db_session, merchant.id)
    grouping.awaiting = None  # the group succeeded: the order moves to "to ship"
    db_session.execute(  # raw SQL is counted too
        update(Order).where(Order.id == refunded.id).values(picked_up_at=None)
    )
    db_session.flush()
    counts = tab_counts(db_session, scope, flt)  # the console's read: the counters
    assert counts == _recount(db_session, merchant.id)
    assert (counts[Tab.GROUPING], counts[Tab.TO_SHIP], counts[Tab.CLOSED]) == (0, 1, 1)
    db_session.delete(grouping)
    db_session.flush()
    assert counted_tabs(db_session, merchant.id)[Tab.TO_SHIP] == 0


def test_counters_are_exact_under_concurrent_transitions(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],  # noqa: F811
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    factory = make_session_factory(engines(url), settings)
    with factory() as s:
        merchant = make_merchant(s)
        sku = make_sku(s, make_product(s, merchant), stock=10_000)
        shopper = make_user(s)
        ids = [
            create_order(
                s, user_id=shopper.id, sku_id=sku.id, qty=1, unit_price_cents=sku.price_cents
            ).id
            for _ in range(96)
        ]
        s.commit()
        merchant_id, sku_id, price, user_id = merchant.id, sku.id, sku.price_cents, shopper.id
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        try:
            start.wait()
            for order_id in ids[k::8]:
                with factory() as s:  # one transaction per move, as in production
                    to = "cancelled" if len(order_id) % 2 or k % 2 else "expired"
                    transition(s, order_id, to, actor=OPS, reason="test")
                    create_order(s, user_id=user_id, sku_id=sku_id, qty=1, unit_price_cents=price)
                    s.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with factory() as s:
        counts = counted_tabs(s, merchant_id)
        assert counts == _recount(s, merchant_id)
        assert counts[Tab.PENDING_PAYMENT] == 96 and counts[Tab.CLOSED] == 96
        assert reconcile_tab_counts(s) == 0


def test_reconciliation_rebuilds_wrong_counters(db_session: Session) -> None:
    merchant = make_merchant(db_session)
    for status in ("pending_payment", "paid", "picked_up"):
        put_order(db_session, merchant, status=status)
    assert compact_tab_counts(db_session) is not None  # the deltas are in the counters now
    db_session.execute(
        update(OrderTabCount)
        .where(OrderTabCount.merchant_id == merchant.id, OrderTabCount.tab == "to_ship")
        .values(n=OrderTabCount.n + 5)
    )
    db_session.add(OrderTabCount(merchant_id=merchant.id, tab="closed", n=2))
    db_session.flush()
    assert counted_tabs(db_session, merchant.id) != _recount(db_session, merchant.id)
    assert reconcile_tab_counts(db_session) == 2
    assert counted_tabs(db_session, merchant.id) == _recount(db_session, merchant.id)
    assert reconcile_tab_counts(db_session) == 0
