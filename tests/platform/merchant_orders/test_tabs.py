"""Status tabs: every order lands in exactly one tab, in Python and in SQL alike."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.factories import make_merchant
from tests.platform.merchant_orders.fx import put_order
from tuanbox.merchant_orders.listing import (
    OrderFilter,
    Scope,
    list_orders,
    tab_condition,
    tab_counts,
)
from tuanbox.merchant_orders.tabs import LABELS, RULES, Tab, tab_of
from tuanbox.orders.domain import Awaiting, OrderStatus
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

AWAITING = [None, *Awaiting]


@pytest.mark.parametrize(
    ("status", "awaiting", "picked"),
    list(itertools.product(OrderStatus, AWAITING, [False, True])),
)
def test_every_state_has_exactly_one_tab(
    status: OrderStatus, awaiting: str | None, picked: bool
) -> None:
    tab = tab_of(status, awaiting, picked)
    holders = [t for t, rule in RULES.items() if status in rule.statuses]
    assert tab in holders and set(LABELS) == set(Tab)


@pytest.mark.parametrize(
    ("status", "awaiting", "picked", "tab"),
    [
        ("pending_payment", None, False, Tab.PENDING_PAYMENT),
        ("paid", "group", False, Tab.GROUPING),
        ("paid", "merchant", False, Tab.TO_SHIP),
        ("paid", "receiving", False, Tab.TO_SHIP),
        ("paid", "review", False, Tab.TO_SHIP),
        ("confirmed", None, False, Tab.TO_SHIP),
        ("allocated", None, False, Tab.TO_SHIP),
        ("quality_hold", None, False, Tab.TO_SHIP),
        ("ready_for_pickup", None, False, Tab.AWAITING_PICKUP),
        ("picked_up", None, True, Tab.COMPLETED),
        ("completed", None, True, Tab.COMPLETED),
        ("return_requested", None, True, Tab.AFTER_SALES),
        ("returned", None, True, Tab.AFTER_SALES),
        ("refunded", None, True, Tab.AFTER_SALES),
        ("refunded", None, False, Tab.CLOSED),
        ("cancelled", None, False, Tab.CLOSED),
        ("expired", None, False, Tab.CLOSED),
    ],
)
def test_tabs_as_merchants_know_them(
    status: str, awaiting: str | None, picked: bool, tab: Tab
) -> None:
    assert tab_of(status, awaiting, picked) == tab


def test_sql_tabs_agree_with_python_and_counts_add_up(
    db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    combos = [
        (s, a, p)
        for s, a, p in itertools.product(OrderStatus, [None, "group", "merchant"], [False, True])
        if s != "paid" or a is not None
    ]
    expected: dict[Tab, set[str]] = {t: set() for t in Tab}
    for status, awaiting, picked in combos:
        order = put_order(db_session, merchant, status=status, awaiting=awaiting, picked_up=picked)
        expected[tab_of(status, awaiting, picked)].add(order.id)
    scope = Scope(merchant.id, settings)
    for tab in Tab:
        in_sql = set(
            db_session.scalars(
                select(Order.id).where(Order.merchant_id == merchant.id, tab_condition(tab))
            )
        )
        assert in_sql == expected[tab], tab
        page = list_orders(db_session, scope, OrderFilter(tab=tab), limit=200)
        assert {r.id for r in page.rows} == expected[tab]
        assert all(r.tab == tab for r in page.rows)
    counts = tab_counts(db_session, scope, OrderFilter(tab=Tab.CLOSED))  # the tab is ignored
    assert counts == {t: len(ids) for t, ids in expected.items()}
    assert sum(counts.values()) == len(combos)
