"""Refunds: owed once per key, never above what was paid, retried until paid, never twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_order, make_sku, make_user
from tuanbox.audit.services import Actor
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.errors import RefundExceedsPaidError, RefundKeyConflictError
from tuanbox.payments.models import Refund, SimPayRecord
from tuanbox.payments.services import (
    handle_event,
    process_due_refunds,
    process_refund,
    refund,
    start_checkout,
)
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

OPS = Actor("ops-1", "ops")


def _paid_order(session: Session, settings: Settings, price: int = 2000, qty: int = 1) -> Order:
    sim = SimPay(settings)
    order = make_order(session, sku=make_sku(session, price_cents=price), qty=qty)
    intent = start_checkout(session, order, sim)
    charge = sim.charge(session, intent.id, intent.amount_cents)
    body, headers = sim.payment_webhook(charge)
    assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"
    session.refresh(order)
    assert order.status == "paid"
    return order


def test_refund_is_idempotent_per_key_and_capped(db_session: Session, settings: Settings) -> None:
    order = _paid_order(db_session, settings, price=1000, qty=3)
    first = refund(db_session, order, 500, "tier difference", key=f"tier:{order.id}")
    assert refund(db_session, order, 500, "tier difference", key=f"tier:{order.id}").id == first.id
    with pytest.raises(RefundKeyConflictError):
        refund(db_session, order, 600, "tier difference", key=f"tier:{order.id}")
    with pytest.raises(RefundExceedsPaidError) as info:
        refund(db_session, order, 2501, "too much", key="other")
    assert info.value.status == 409
    refund(db_session, order, 2500, "the rest", key="rest")
    with pytest.raises(RefundExceedsPaidError):
        refund(db_session, order, 1, "one more cent", key="cent")


def test_retry_after_provider_failures_pays_exactly_once(
    db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings)
    owed = refund(db_session, order, 2000, "group failed", key=f"group-failed:{order.id}")
    flaky = SimPay(settings, fail_refunds=2)
    now = utcnow()
    assert process_refund(db_session, owed.id, flaky, base_s=5, max_s=60, now=now) == "pending"
    first_retry = owed.next_attempt_at
    assert timedelta(seconds=4) <= first_retry - now <= timedelta(seconds=6)
    assert owed.last_error and "unavailable" in owed.last_error
    assert process_refund(db_session, owed.id, flaky, base_s=5, max_s=60, now=now) == "pending"
    assert owed.next_attempt_at - now >= timedelta(seconds=8), "backoff grows"
    assert process_refund(db_session, owed.id, flaky, base_s=5, max_s=60, now=now) == "succeeded"
    assert process_refund(db_session, owed.id, flaky, base_s=5, max_s=60, now=now) == "done"
    assert (owed.attempts, flaky.refund_calls) == (3, 3)
    assert owed.status == "succeeded"
    assert len(flaky.refunds_for(db_session, owed.id)) == 1
    db_session.refresh(order)
    assert (order.refunded_cents, order.status) == (2000, "refunded")


def test_paid_cancel_refunds_automatically_through_the_api(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings)
    owner_id = order.user_id
    ops = make_user(db_session, "ops")
    from tuanbox.accounts.models import User

    owner = db_session.get(User, owner_id)
    assert owner is not None
    r = client.post(
        f"/api/v1/orders/{order.id}/cancel",
        json={"reason": "no longer needed"},
        headers=auth_header(settings, owner),
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    refunds = client.get(
        f"/api/v1/orders/{order.id}/refunds", headers=auth_header(settings, owner)
    ).json()
    assert [(x["amount_cents"], x["status"]) for x in refunds] == [(2000, "pending")]
    assert process_refund(db_session, refunds[0]["id"], SimPay(settings)) == "succeeded"
    after = client.get(f"/api/v1/orders/{order.id}", headers=auth_header(settings, ops)).json()
    assert (after["status"], after["refunded_cents"]) == ("refunded", 2000)


def test_manual_refund_endpoint(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings, price=3000)
    transition(db_session, order, "confirmed", actor=OPS, reason="group filled")
    ops, shopper = make_user(db_session, "ops"), make_user(db_session)
    url = f"/api/v1/orders/{order.id}/refunds"
    body = {"amount_cents": 300, "reason": "bruised fruit"}
    assert client.post(url, json=body, headers=auth_header(settings, shopper)).status_code == 403
    h = {**auth_header(settings, ops), "Idempotency-Key": "goodwill-1"}
    first = client.post(url, json=body, headers=h)
    assert first.status_code == 201, first.text
    again = client.post(url, json=body, headers=h)
    assert (
        again.json()["id"] == first.json()["id"] and again.headers["Idempotent-Replayed"] == "true"
    )
    over = client.post(
        url, json={"amount_cents": 2701, "reason": "too much"}, headers=auth_header(settings, ops)
    )
    assert over.status_code == 409 and over.json()["code"] == "REFUND_EXCEEDS_PAID"
    audit = db_session.execute(
        sa.text("SELECT count(*) FROM audit_log WHERE action = 'order.refund'")
    ).scalar()
    assert audit == 1
    db_session.refresh(order)
    assert order.status == "confirmed", "a partial refund leaves the order going"


def test_due_refund_scan_survives_a_lost_outcome(
    fresh_database: Callable[[], str], settings: Settings
) -> None:
    """The provider paid but our transaction died before recording it: no double refund."""
    engine = make_engine(fresh_database())
    factory = make_session_factory(engine, settings)  # paying runs hooks that need them
    try:
        with factory() as session, session.begin():
            order = _paid_order(session, settings)
            owed = refund(session, order, 2000, "group failed", key="gf")
            refund_id, order_id = owed.id, order.id
        # Attempt 1: the provider books the refund (its own commit), then we crash.
        with factory() as session:
            session.begin()
            assert process_refund(session, refund_id, SimPay(settings)) == "succeeded"
            session.rollback()
        with factory() as session:
            row = session.get(Refund, refund_id)
            assert row is not None and row.status == "pending"

        flaky_then_ok = SimPay(settings, fail_refunds=1)
        assert process_due_refunds(factory, lambda _name: flaky_then_ok) == {"pending": 1}
        assert process_due_refunds(factory, lambda _name: flaky_then_ok) == {}, "not due yet"
        later = utcnow() + timedelta(minutes=20)
        assert process_due_refunds(factory, lambda _name: flaky_then_ok, now=later) == {
            "succeeded": 1
        }
        assert process_due_refunds(factory, lambda _name: flaky_then_ok, now=later) == {}
        with factory() as session:
            ledger = session.scalars(
                sa.select(SimPayRecord).where(
                    SimPayRecord.kind == "refund", SimPayRecord.idempotency_key == refund_id
                )
            ).all()
            assert len(ledger) == 1, "the provider honoured our refund id as idempotency key"
            final = session.get(Order, order_id)
            assert final is not None and (final.status, final.refunded_cents) == ("refunded", 2000)
    finally:
        engine.dispose()


def test_ops_sees_stuck_refunds(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings)
    owed = refund(db_session, order, 2000, "group failed", key="stuck")
    down = SimPay(settings, fail_refunds=3)
    for _ in range(3):
        process_refund(db_session, owed.id, down)
    ops = auth_header(settings, make_user(db_session, "ops"))
    stuck = client.get("/api/v1/refunds", params={"min_attempts": 3}, headers=ops).json()
    assert [(r["id"], r["attempts"]) for r in stuck] == [(owed.id, 3)]
    assert client.get("/api/v1/refunds", params={"status": "weird"}, headers=ops).status_code == 422
    assert (
        client.get(
            "/api/v1/refunds", headers=auth_header(settings, make_user(db_session))
        ).status_code
        == 403
    )
