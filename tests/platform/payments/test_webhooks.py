"""Payment webhooks: signatures, duplicates, any order, late payments refunded automatically."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_order, make_sku, make_user
from tuanbox.audit.services import Actor
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.notifications.models import Notification
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.models import Payment, PaymentIntent, Refund
from tuanbox.payments.services import handle_event, process_refund, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

URL = "/api/v1/payments/sim/webhook"


def _paid_event(
    sim: SimPay, intent: PaymentIntent, txn: str, amount: int | None = None
) -> tuple[bytes, dict[str, str]]:
    return sim.webhook(
        {
            "id": f"evt_{txn}",
            "type": "payment.succeeded",
            "data": {
                "txn_id": txn,
                "intent_id": intent.id,
                "amount_cents": amount or intent.amount_cents,
            },
        }
    )


def _intent(session: Session, settings: Settings, qty: int = 1) -> tuple[Order, PaymentIntent]:
    order = make_order(session, sku=make_sku(session, price_cents=1500), qty=qty)
    return order, start_checkout(session, order, SimPay(settings))


def _post(client: TestClient, signed: tuple[bytes, dict[str, str]]) -> dict:
    body, headers = signed
    r = client.post(URL, content=body, headers=headers)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_signature_is_required_and_checked(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order, intent = _intent(db_session, settings)
    sim = SimPay(settings)
    body, headers = _paid_event(sim, intent, "txn-sig")
    tampered = body.replace(b'"amount_cents":1500', b'"amount_cents":1')
    assert tampered != body
    for content, hdrs in (
        (tampered, headers),
        (body, {}),
        (body, {"x-simpay-signature": "t=abc,v1=00"}),
        (body, {"x-simpay-signature": headers["x-simpay-signature"].replace("v1=", "v1=0")}),
    ):
        r = client.post(URL, content=content, headers=hdrs)
        assert r.status_code == 401 and r.json()["code"] == "WEBHOOK_SIGNATURE_INVALID"
    # Signed with someone else's secret.
    other = SimPay(make_settings(payment_webhook_secret="not-ours"))
    r = client.post(URL, content=body, headers=other.webhook(json.loads(body))[1])
    assert r.status_code == 401
    # A correctly signed but old message is a replay.
    old = sim.webhook(json.loads(body), timestamp=int(time.time()) - 3600)
    assert client.post(URL, content=old[0], headers=old[1]).status_code == 401
    # Signed garbage is a 422, not a crash.
    junk = sim.webhook({"type": "payment.succeeded", "data": {"txn_id": "x"}})
    r = client.post(URL, content=junk[0], headers=junk[1])
    assert r.status_code == 422 and r.json()["code"] == "WEBHOOK_PAYLOAD_INVALID"
    assert (
        client.post("/api/v1/payments/paypal/webhook", content=body, headers=headers).status_code
        == 404
    )
    db_session.refresh(order)
    assert order.status == "pending_payment" and order.paid_cents == 0


def test_duplicate_webhook_applies_once(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order, intent = _intent(db_session, settings, qty=2)
    signed = _paid_event(SimPay(settings), intent, "txn-dup")
    assert _post(client, signed) == {"status": "applied"}
    assert _post(client, signed) == {"status": "duplicate"}
    notices = db_session.scalars(
        sa.select(Notification.template).where(Notification.user_id == order.user_id)
    ).all()
    assert notices == ["order_paid"], "one notice, however many webhooks"
    db_session.refresh(order)
    assert (order.status, order.paid_cents) == ("paid", 3000)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0


def test_payment_after_cancel_is_refunded(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order, intent = _intent(db_session, settings)
    transition(
        db_session, order, "cancelled", actor=Actor(order.user_id, "shopper"), reason="changed mind"
    )
    assert _post(client, _paid_event(SimPay(settings), intent, "txn-late")) == {
        "status": "refunding"
    }
    db_session.refresh(order)
    assert (order.status, order.paid_cents) == ("cancelled", 1500)
    refund = db_session.scalars(sa.select(Refund).where(Refund.order_id == order.id)).one()
    assert (refund.amount_cents, refund.status) == (1500, "pending")
    assert process_refund(db_session, refund.id, SimPay(settings)) == "succeeded"
    db_session.refresh(order)
    assert (order.status, order.refunded_cents) == ("refunded", 1500)
    notices = db_session.scalars(
        sa.select(Notification.template).where(Notification.user_id == order.user_id)
    ).all()
    assert notices == ["order_refunded"], "a late payment never reads as 'paid' to the shopper"
    # The same late webhook again: nothing more happens.
    assert _post(client, _paid_event(SimPay(settings), intent, "txn-late")) == {
        "status": "duplicate"
    }
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 1


def test_payment_after_expiry_and_second_payment_are_refunded(
    db_session: Session, settings: Settings
) -> None:
    sim = SimPay(settings)
    order, intent = _intent(db_session, settings)
    transition(db_session, order, "expired", actor=Actor("system", "system"), reason="unpaid")
    body, headers = _paid_event(sim, intent, "txn-exp")
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "refunding"

    paid, paid_intent = _intent(db_session, settings)
    body, headers = _paid_event(sim, paid_intent, "txn-first")
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "applied"
    body, headers = _paid_event(sim, paid_intent, "txn-second")  # the shopper paid twice
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "refunding"
    db_session.refresh(paid)
    assert (paid.status, paid.paid_cents) == ("paid", 3000)
    keys = db_session.scalars(sa.select(Refund.key).order_by(Refund.key)).all()
    assert keys == ["unapplied-payment:sim:txn-exp", "unapplied-payment:sim:txn-second"]


def test_wrong_amount_is_not_taken_as_payment(db_session: Session, settings: Settings) -> None:
    sim = SimPay(settings)
    order, intent = _intent(db_session, settings)
    body, headers = _paid_event(sim, intent, "txn-short", amount=100)
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "refunding"
    db_session.refresh(order)
    assert order.status == "pending_payment"
    # The shopper then pays the right amount: that one counts in full.
    again = start_checkout(db_session, order, sim)
    assert again.amount_cents == 1500
    body, headers = _paid_event(sim, again, "txn-right")
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "applied"
    db_session.refresh(order)
    assert (order.status, order.paid_cents) == ("paid", 1600)
    refunds = db_session.scalars(sa.select(Refund.amount_cents).where(Refund.order_id == order.id))
    assert list(refunds) == [100]


def test_refund_webhook_before_our_own_confirmation(
    db_session: Session, settings: Settings
) -> None:
    """The provider's refund webhook overtakes our call's answer; the refund completes once."""
    sim = SimPay(settings)
    order, intent = _intent(db_session, settings)
    body, headers = _paid_event(sim, intent, "txn-r")
    handle_event(db_session, sim.verify_webhook(headers, body))
    transition(db_session, order, "cancelled", actor=Actor("ops", "ops"), reason="out of stock")
    refund = db_session.scalars(sa.select(Refund).where(Refund.order_id == order.id)).one()
    event = {
        "type": "refund.succeeded",
        "data": {"refund_id": refund.id, "provider_refund_id": "sp_ref_x", "amount_cents": 1500},
    }
    body, headers = sim.webhook(event)
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "applied"
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "duplicate"
    assert process_refund(db_session, refund.id, sim) == "done"
    assert sim.refund_calls == 0, "already confirmed: the provider is not asked again"
    db_session.refresh(order)
    assert (order.status, order.refunded_cents) == ("refunded", 1500)
    unknown = sim.webhook({**event, "data": {**event["data"], "refund_id": "not-ours"}})
    assert handle_event(db_session, sim.verify_webhook(*reversed(unknown))) == "ignored"  # type: ignore[arg-type]


def test_hosted_page_checkout_flow(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper, stranger = make_user(db_session), make_user(db_session)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=999))
    url = f"/api/v1/orders/{order.id}/payments"
    assert client.post(url, json={}, headers=auth_header(settings, stranger)).status_code == 404
    assert (
        client.post(
            url, json={"provider": "paypal"}, headers=auth_header(settings, shopper)
        ).status_code
        == 404
    )
    intent = client.post(url, json={}, headers=auth_header(settings, shopper)).json()
    assert intent["checkout_url"].endswith(f"/pay/sim/{intent['id']}")
    again = client.post(url, json={}, headers=auth_header(settings, shopper)).json()
    assert again["id"] == intent["id"], "an open intent for the same amount is reused"
    assert "9.99" in client.get(f"/pay/sim/{intent['id']}").text
    assert client.post(f"/pay/sim/{intent['id']}/confirm").status_code == 200
    assert client.post(f"/pay/sim/{intent['id']}/confirm").status_code == 200, "double click"
    db_session.refresh(order)
    assert (order.status, order.paid_cents) == ("paid", 999)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 1
    late = client.post(url, json={}, headers=auth_header(settings, shopper))
    assert late.status_code == 409 and late.json()["code"] == "ORDER_NOT_PAYABLE"


def test_concurrent_duplicate_webhooks_apply_once(
    fresh_database: Callable[[], str], settings: Settings
) -> None:
    engine = make_engine(fresh_database(), pool_size=20, max_overflow=0)
    factory = make_session_factory(engine, settings)  # paying runs hooks that need them
    sim = SimPay(settings)
    with factory() as session, session.begin():
        order, intent = _intent(session, settings)
        order_id = order.id
    signed = _paid_event(sim, intent, "txn-race")
    outcomes: list[str] = []
    barrier = threading.Barrier(12)

    def deliver() -> None:
        barrier.wait()
        with factory() as session, session.begin():
            outcomes.append(handle_event(session, sim.verify_webhook(signed[1], signed[0])))

    threads = [threading.Thread(target=deliver) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with factory() as session:
        order = session.get(Order, order_id)
        assert order is not None and (order.status, order.paid_cents) == ("paid", 1500)
        assert session.scalar(sa.select(sa.func.count()).select_from(Refund)) == 0
    engine.dispose()
    assert sorted(outcomes) == ["applied"] + ["duplicate"] * 11
