"""The order state machine: every illegal move is refused and leaves no trace; stock follows."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_order, make_sku, make_user
from tuanbox.audit.services import Actor
from tuanbox.db.hooks import after_commit
from tuanbox.orders import hooks
from tuanbox.orders.domain import ALLOWED, HOLDS_STOCK, TERMINAL, OrderStatus, can_transition
from tuanbox.orders.errors import IllegalTransitionError
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.orders.services import transition
from tuanbox.settings import Settings

OPS = Actor(id="ops-1", role="ops")
S = OrderStatus


def test_table_covers_every_status_and_happy_path_is_legal() -> None:
    assert set(ALLOWED) == set(OrderStatus)
    happy = [
        S.PENDING_PAYMENT,
        S.PAID,
        S.CONFIRMED,
        S.ALLOCATED,
        S.READY_FOR_PICKUP,
        S.PICKED_UP,
        S.COMPLETED,
    ]
    for a, b in itertools.pairwise(happy):
        assert can_transition(a, b)
    assert {S.REFUNDED} == TERMINAL
    for status in OrderStatus:
        assert not can_transition(status, status), "no self-loops: a repeat is a bug to surface"


def _drive(session: Session, order: Order, *path: OrderStatus) -> None:
    for status in path:
        transition(session, order, status, actor=OPS, reason="test")


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), S.CONFIRMED),
        ((), S.PICKED_UP),
        ((S.PAID,), S.PENDING_PAYMENT),
        ((S.PAID, S.CONFIRMED), S.PAID),
        ((S.CANCELLED,), S.PAID),
        ((S.EXPIRED,), S.PAID),
        ((S.PAID, S.CONFIRMED, S.ALLOCATED, S.READY_FOR_PICKUP, S.PICKED_UP), S.CANCELLED),
    ],
)
def test_illegal_transition_changes_nothing(
    db_session: Session, path: tuple[OrderStatus, ...], illegal: OrderStatus
) -> None:
    sku = make_sku(db_session, stock=5)
    order = make_order(db_session, sku=sku, qty=2)
    _drive(db_session, order, *path)
    before_rows = db_session.scalar(sa.select(sa.func.count()).select_from(OrderTransition))
    before = (order.status, sku.stock_on_hand, sku.stock_reserved)
    with pytest.raises(IllegalTransitionError) as info:
        transition(db_session, order.id, illegal, actor=OPS, reason="nope")
    assert info.value.code == "ILLEGAL_TRANSITION" and info.value.status == 409
    db_session.refresh(order)
    db_session.refresh(sku)
    assert (order.status, sku.stock_on_hand, sku.stock_reserved) == before
    assert db_session.scalar(sa.select(sa.func.count()).select_from(OrderTransition)) == before_rows


def test_every_status_pair_matches_the_table(db_session: Session) -> None:
    """Walk to each status by a legal route, then try every target: service == table."""
    routes = {
        S.PENDING_PAYMENT: (),
        S.PAID: (S.PAID,),
        S.CONFIRMED: (S.PAID, S.CONFIRMED),
        S.ALLOCATED: (S.PAID, S.CONFIRMED, S.ALLOCATED),
        S.READY_FOR_PICKUP: (S.PAID, S.CONFIRMED, S.ALLOCATED, S.READY_FOR_PICKUP),
        S.QUALITY_HOLD: (S.PAID, S.CONFIRMED, S.QUALITY_HOLD),
        S.CANCELLED: (S.CANCELLED,),
        S.EXPIRED: (S.EXPIRED,),
    }
    sku = make_sku(db_session, stock=1000)
    for start, route in routes.items():
        for target in OrderStatus:
            order = make_order(db_session, sku=sku, reserve=True)
            _drive(db_session, order, *route)
            try:
                with db_session.begin_nested():
                    transition(db_session, order, target, actor=OPS, reason="walk")
                moved = True
            except IllegalTransitionError:
                moved = False
            assert moved == can_transition(start, target), (start, target)


def test_stock_released_on_cancel_and_committed_on_pickup(db_session: Session) -> None:
    sku = make_sku(db_session, stock=5)
    a = make_order(db_session, sku=sku, qty=2)
    b = make_order(db_session, sku=sku, qty=1)
    assert (sku.stock_on_hand, sku.stock_reserved) == (5, 3)
    _drive(db_session, a, S.CANCELLED)
    assert (sku.stock_on_hand, sku.stock_reserved) == (5, 1)
    _drive(db_session, b, S.PAID, S.CONFIRMED, S.ALLOCATED, S.READY_FOR_PICKUP, S.PICKED_UP)
    assert (sku.stock_on_hand, sku.stock_reserved) == (4, 0)
    assert b.stock_held is False and b.picked_up_at is not None
    history = db_session.scalars(
        sa.select(OrderTransition.to_status)
        .where(OrderTransition.order_id == b.id)
        .order_by(OrderTransition.id)
    ).all()
    assert history == [
        "pending_payment",
        "paid",
        "confirmed",
        "allocated",
        "ready_for_pickup",
        "picked_up",
    ]
    assert S.PICKED_UP not in HOLDS_STOCK


def test_unreserved_orders_never_touch_stock(db_session: Session) -> None:
    sku = make_sku(db_session, stock=1, reserved=1)  # e.g. a flash sale holds it elsewhere
    order = make_order(db_session, sku=sku, reserve=False)
    _drive(db_session, order, S.CANCELLED)
    assert (sku.stock_on_hand, sku.stock_reserved) == (1, 1)


def test_hooks_run_in_the_transaction_and_can_veto(db_session: Session) -> None:
    seen: list[tuple[str, str]] = []

    def watcher(session: Session, order: Order, from_status: str) -> None:
        seen.append((order.id, from_status))
        if order.qty == 3:
            raise RuntimeError("veto")

    hooks.on_status("confirmed", watcher)
    hooks.on_status("confirmed", watcher)  # registering twice is harmless
    try:
        ok = make_order(db_session, qty=1)
        _drive(db_session, ok, S.PAID, S.CONFIRMED)
        assert seen == [(ok.id, "paid")]
        vetoed = make_order(db_session, qty=3)
        _drive(db_session, vetoed, S.PAID)
        with pytest.raises(RuntimeError), db_session.begin_nested():
            transition(db_session, vetoed, S.CONFIRMED, actor=OPS, reason="x")
        db_session.refresh(vetoed)
        assert vetoed.status == "paid"
    finally:
        hooks._handlers["confirmed"].remove(watcher)


def test_after_commit_runs_only_after_commit(db_session: Session) -> None:
    ran: list[str] = []
    db_session.execute(sa.text("SELECT 1"))
    after_commit(db_session, lambda: ran.append("first"))
    db_session.rollback()
    assert ran == []
    after_commit(db_session, lambda: ran.append("second"))
    with db_session.begin_nested():
        pass  # a SAVEPOINT released is not the commit
    assert ran == []
    db_session.commit()
    assert ran == ["second"]
    db_session.commit()
    assert ran == ["second"], "runs once"


def test_api_illegal_transition_is_409_problem(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ops = make_user(db_session, "ops")
    order = make_order(db_session)
    r = client.post(
        f"/api/v1/orders/{order.id}/transitions",
        json={"to": "picked_up", "reason": "testing"},
        headers=auth_header(settings, ops),
    )
    assert r.status_code == 409
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert problem["code"] == "ILLEGAL_TRANSITION"
    assert (problem["from_status"], problem["to_status"]) == ("pending_payment", "picked_up")
    bad = client.post(
        f"/api/v1/orders/{order.id}/transitions",
        json={"to": "teleported", "reason": "x"},
        headers=auth_header(settings, ops),
    )
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"to", "reason"}
    ok = client.post(
        f"/api/v1/orders/{order.id}/transitions",
        json={"to": "cancelled", "reason": "customer called"},
        headers=auth_header(settings, ops),
    )
    assert ok.status_code == 200 and ok.json()["status"] == "cancelled"
    audit = db_session.execute(
        sa.text("SELECT action, reason FROM audit_log WHERE subject_id = :id"), {"id": order.id}
    )
    assert [tuple(r) for r in audit] == [("order.cancelled", "customer called")]
    history = client.get(
        f"/api/v1/orders/{order.id}/transitions", headers=auth_header(settings, ops)
    ).json()
    assert [(h["to_status"], h["actor_role"]) for h in history] == [
        ("pending_payment", "shopper"),
        ("cancelled", "ops"),
    ]
