"""A refund that keeps failing stops after a bounded number of attempts, alerts ops once, and
has a manual way out (retry, or resolve with a note), audited and for ops only."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_order, make_sku, make_user
from tests.support import wait_until
from tuanbox.audit.models import AuditEntry
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund
from tuanbox.payments.services import handle_event, process_refund, refund, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings
from tuanbox.worker.app import create_celery


def _paid_order(session: Session, settings: Settings, price: int = 2000) -> Order:
    sim = SimPay(settings)
    order = make_order(session, sku=make_sku(session, price_cents=price))
    intent = start_checkout(session, order, sim)
    body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
    assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"
    session.refresh(order)
    return order


def _alerts(session: Session, order_id: str) -> list[OpsAlert]:
    return list(
        session.scalars(
            sa.select(OpsAlert).where(
                OpsAlert.order_id == order_id, OpsAlert.kind == "refund_failed"
            )
        )
    )


def _failed(session: Session, settings: Settings, order: Order, amount: int = 2000) -> Refund:
    owed = refund(session, order, amount, "group failed", key=f"group-failed:{order.id}")
    down = SimPay(settings, fail_refunds=100)
    outcomes = [process_refund(session, owed.id, down, max_attempts=3) for _ in range(3)]
    assert outcomes == ["pending", "pending", "failed"]
    return owed


def test_failing_refund_ends_failed_with_exactly_one_alert(
    db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings)
    owed = _failed(db_session, settings, order)
    assert (owed.status, owed.attempts) == ("failed", 3)
    assert owed.last_error and "unavailable" in owed.last_error
    down = SimPay(settings, fail_refunds=100)
    assert process_refund(db_session, owed.id, down, max_attempts=3) == "done"
    assert down.refund_calls == 0, "a failed refund is not tried again by itself"
    alerts = _alerts(db_session, order.id)
    assert len(alerts) == 1
    assert (alerts[0].severity, alerts[0].status) == ("critical", "open")
    assert owed.id in alerts[0].detail and f"/api/v1/refunds/{owed.id}/retry" in alerts[0].next_step
    db_session.refresh(order)
    assert order.refunded_cents == 0


def test_worker_gives_up_after_the_configured_attempts(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    settings = make_settings(
        database_url=url,
        refund_max_attempts=2,
        refund_retry_base_s=0.001,
        refund_retry_max_s=0.001,
        simpay_refund_failure_rate=1.0,
    )
    celery = create_celery(settings)
    importlib.import_module("tuanbox.payments.tasks")
    engine = make_engine(url)
    factory = make_session_factory(engine, settings)  # paying runs hooks that need them
    try:
        with factory() as session, session.begin():
            order = _paid_order(session, settings)
            owed = refund(session, order, 2000, "group failed", key="worker-gives-up")
            refund_id, order_id = owed.id, order.id

        def status() -> str | None:
            celery.tasks["payments.process_due_refunds"].apply().get()
            with factory() as session:
                return session.scalar(sa.select(Refund.status).where(Refund.id == refund_id))

        wait_until(lambda: status() == "failed", timeout=10, what="the refund to fail for good")
        assert celery.tasks["payments.process_due_refunds"].apply().get() == {}
        with factory() as session:
            row = session.get(Refund, refund_id)
            assert row is not None and row.attempts == 2
            assert len(_alerts(session, order_id)) == 1
    finally:
        engine.dispose()
        from tuanbox.worker.db import dispose_all

        dispose_all()


def test_ops_retry_and_resolve_are_audited_and_ops_only(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings)
    owed = _failed(db_session, settings, order)
    ops = auth_header(settings, make_user(db_session, "ops"))
    shopper = auth_header(settings, make_user(db_session))
    merchant = auth_header(settings, make_user(db_session, "merchant_staff"))
    retry, resolve = f"/api/v1/refunds/{owed.id}/retry", f"/api/v1/refunds/{owed.id}/resolve"
    for headers in (shopper, merchant):
        for url in (retry, resolve):
            r = client.post(url, json={"note": "let me"}, headers=headers)
            assert r.status_code == 403, r.text
    assert client.post(retry, json={"note": "x"}).status_code == 401
    listed = client.get("/api/v1/refunds", params={"status": "failed"}, headers=ops).json()
    assert [r["id"] for r in listed] == [owed.id] and listed[0]["last_error"]

    # Retry: back in the queue with a fresh budget; it pays this time.
    r = client.post(retry, json={"note": "WeChat balance topped up"}, headers=ops)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["attempts"]) == ("pending", 0)
    again = client.post(retry, json={"note": "twice"}, headers=ops)
    assert (again.status_code, again.json()["code"]) == (409, "REFUND_NOT_FAILED")
    db_session.refresh(owed)
    assert process_refund(db_session, owed.id, SimPay(settings), max_attempts=3) == "succeeded"
    db_session.refresh(order)
    assert (order.status, order.refunded_cents) == ("refunded", 2000)
    entry = db_session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "refund.retry")
    ).one()
    assert (entry.subject_id, entry.reason, entry.actor_role) == (
        owed.id,
        "WeChat balance topped up",
        "ops",
    )


def test_ops_resolve_a_refund_paid_another_way(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings, price=3000)
    owed = _failed(db_session, settings, order, amount=3000)
    ops = auth_header(settings, make_user(db_session, "admin"))
    url = f"/api/v1/refunds/{owed.id}/resolve"
    for bad in (
        {},
        {"note": "no"},
        {"note": "n" * 501},
        {"note": "bank transfer", "reference": "r" * 101},
        {"note": "bank\x00transfer"},
    ):
        r = client.post(url, json=bad, headers=ops)
        assert 400 <= r.status_code < 500 and r.status_code != 404, (bad, r.status_code)
    missing = client.post(
        "/api/v1/refunds/00000000-0000-0000-0000-000000000000/resolve",
        json={"note": "bank transfer"},
        headers=ops,
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "REFUND_NOT_FOUND")
    body = {"note": "paid by bank transfer on 12 Dec", "reference": "ICBC-20261212-0042"}
    r = client.post(url, json=body, headers=ops)
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["resolution_note"]) == ("resolved", body["note"])
    assert client.post(url, json=body, headers=ops).status_code == 409
    db_session.refresh(owed)
    db_session.refresh(order)
    assert owed.provider_refund_id == "ICBC-20261212-0042" and owed.resolved_by
    assert (order.status, order.refunded_cents) == ("refunded", 3000)
    entry = db_session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "refund.resolve")
    ).one()
    assert (entry.subject_id, entry.reason) == (owed.id, body["note"])
    listed = client.get("/api/v1/refunds", params={"status": "resolved"}, headers=ops).json()
    assert [r["id"] for r in listed] == [owed.id]
    # A provider confirmation arriving after all: paid twice, so ops hear about it.
    sim = SimPay(settings)
    late, headers = sim.webhook(
        {
            "type": "refund.succeeded",
            "data": {"refund_id": owed.id, "provider_refund_id": "sp_late", "amount_cents": 3000},
        }
    )
    assert handle_event(db_session, sim.verify_webhook(headers, late)) == "duplicate"
    kinds = db_session.scalars(sa.select(OpsAlert.kind).where(OpsAlert.order_id == order.id)).all()
    assert sorted(kinds) == ["refund_failed", "refund_paid_twice"]


def test_retry_refused_when_the_money_was_refunded_meanwhile(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order = _paid_order(db_session, settings)
    owed = _failed(db_session, settings, order)
    # The failed refund no longer counts as owed, so ops refunded the order another way.
    replacement = refund(db_session, order, 2000, "manual", key=f"manual:{order.id}")
    assert replacement.status == "pending"
    ops = auth_header(settings, make_user(db_session, "ops"))
    for action in ("retry", "resolve"):
        r = client.post(f"/api/v1/refunds/{owed.id}/{action}", json={"note": "oops"}, headers=ops)
        assert (r.status_code, r.json()["code"]) == (409, "REFUND_EXCEEDS_PAID"), action
    db_session.refresh(owed)
    assert owed.status == "failed"
    # The replacement pays; then the provider confirms the failed one after all: ops hear.
    sim = SimPay(settings)
    assert process_refund(db_session, replacement.id, sim) == "succeeded"
    late, headers = sim.webhook(
        {
            "type": "refund.succeeded",
            "data": {"refund_id": owed.id, "provider_refund_id": "sp_late", "amount_cents": 2000},
        }
    )
    assert handle_event(db_session, sim.verify_webhook(headers, late)) == "alerted"
    assert handle_event(db_session, sim.verify_webhook(headers, late)) == "alerted"
    db_session.refresh(order)
    db_session.refresh(owed)
    assert (order.refunded_cents, order.paid_cents, order.status) == (2000, 2000, "refunded")
    assert (owed.status, owed.provider_refund_id) == ("failed", "sp_late")
    kinds = db_session.scalars(sa.select(OpsAlert.kind).where(OpsAlert.order_id == order.id)).all()
    assert sorted(kinds) == ["refund_failed", "refund_paid_twice"]
