"""Property: any sequence of attempted moves keeps stock bookkeeping exact and history honest."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tests.platform.factories import make_order, make_sku
from tuanbox.audit.services import Actor
from tuanbox.orders.domain import HOLDS_STOCK, OrderStatus, can_transition
from tuanbox.orders.errors import IllegalTransitionError
from tuanbox.orders.services import history, transition

OPS = Actor("ops", "ops")
moves = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3), st.sampled_from(list(OrderStatus))),
    max_size=25,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(qtys=st.lists(st.integers(min_value=1, max_value=3), min_size=4, max_size=4), plan=moves)
def test_reserved_stock_equals_what_live_orders_hold(
    db_session: Session, qtys: list[int], plan: list[tuple[int, OrderStatus]]
) -> None:
    with db_session.begin_nested() as outer:
        sku = make_sku(db_session, stock=20)
        orders = [make_order(db_session, sku=sku, qty=q) for q in qtys]
        moved = [1] * len(orders)
        picked_up = 0
        for index, target in plan:
            order = orders[index]
            before = OrderStatus(order.status)
            held_before = order.stock_held
            legal = can_transition(before, target)
            try:
                with db_session.begin_nested():
                    transition(db_session, order, target, actor=OPS, reason="property")
            except IllegalTransitionError:
                assert not legal
                db_session.refresh(order)
                assert order.status == before
                continue
            assert legal
            moved[index] += 1
            if target == OrderStatus.PICKED_UP and held_before:
                picked_up += order.qty
            db_session.refresh(sku)
            held = sum(o.qty for o in orders if o.stock_held)
            assert sku.stock_reserved == held
            assert sku.stock_on_hand == 20 - picked_up
            assert all(
                o.stock_held == (OrderStatus(o.status) in HOLDS_STOCK and o.picked_up_at is None)
                for o in orders
            )
        for order, count in zip(orders, moved, strict=True):
            assert len(history(db_session, order.id)) == count
        outer.rollback()
