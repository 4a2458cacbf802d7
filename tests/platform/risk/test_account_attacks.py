"""Account attacks through the HTTP API: one IP signing up fifty accounts; declined payments."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import make_sku
from tests.platform.risk.fx import (
    checkout,
    decline_over_webhook,
    headers,
    hit,
    reviews,
    shoppers,
)
from tuanbox.crypto import PiiCipher
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import secrets_of
from tuanbox.orders.models import Order
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings


def _sign_up(client: TestClient, session: Session, settings: Settings, phone: str) -> dict:
    """What a sign-up script does: ask for a code, read it off the SIM bank, exchange it."""
    assert client.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
    cipher = PiiCipher(settings)
    note = session.scalars(
        sa.select(Notification)
        .where(
            Notification.recipient_hash == cipher.blind_index(phone), Notification.template == "otp"
        )
        .order_by(Notification.id.desc())
    ).first()
    assert note is not None
    code = str(secrets_of(cipher, note)["code"])
    response = client.post(
        "/api/v1/auth/token", json={"grant_type": "otp", "phone": phone, "code": code}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _order(session: Session, order_id: str) -> Order:
    return session.scalars(
        sa.select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).one()


def test_one_ip_signing_up_fifty_accounts_puts_the_new_ones_under_review(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """A script with a bank of SIM cards registers fifty accounts from one server."""
    client = client_at("198.51.100.23")
    signed = [_sign_up(client, db_session, settings, f"+86139{i:08d}") for i in range(50)]
    users = [s["user"]["id"] for s in signed]

    queued = reviews(db_session, subject_type="user", event="signup")
    # The twentieth account from one address in an hour is where a burst starts.
    assert [r.user_id for r in queued] == users[19:]
    first = queued[0]
    assert first.action == "review" and first.status == "open"
    burst = hit(first, "signups_per_ip")
    assert burst["count"] == 20 and burst["threshold"] == 20 and burst["window_s"] == 3600
    assert set(burst["accounts"]) == set(users[:20])
    assert hit(queued[-1], "signups_per_ip")["count"] == 50
    assert "198.51.100.23" not in str(burst)

    # Signing in is not refused, but what the new accounts buy waits for ops.
    sku = make_sku(db_session, stock=10)
    late = client.post(
        "/api/v1/orders",
        json={"sku_id": sku.id, "qty": 1},
        headers={"Authorization": f"Bearer {signed[-1]['access_token']}"},
    )
    assert late.status_code == 201, late.text
    assert _order(db_session, late.json()["id"]).risk_hold is True
    (held,) = reviews(db_session, subject_type="order", subject_id=late.json()["id"])
    assert hit(held, "account_under_review")["open_reviews"] == 1
    early = client.post(
        "/api/v1/orders",
        json={"sku_id": sku.id, "qty": 1},
        headers={"Authorization": f"Bearer {signed[0]['access_token']}"},
    )
    assert early.status_code == 201
    assert _order(db_session, early.json()["id"]).risk_hold is False


def test_a_burst_of_declined_payments_queues_the_account_then_blocks_its_checkout(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """Card testing: stolen cards tried one after another on one order, from one browser."""
    client = client_at("203.0.113.77")
    (tester,) = shoppers(db_session, 1, age_days=30)
    hdrs = headers(settings, tester, "web-5b0e77c2aa41")
    sku = make_sku(db_session, stock=10)
    order_id = client.post(
        "/api/v1/orders", json={"sku_id": sku.id, "qty": 1}, headers=hdrs
    ).json()["id"]
    intent = checkout(client, order_id, hdrs).json()

    declined = [decline_over_webhook(client, settings, intent["id"]) for _ in range(5)]
    assert [(r.status_code, r.json()["status"]) for r in declined] == [(200, "recorded")] * 5
    (queued,) = reviews(db_session, subject_type="user", event="payment_failed")
    assert queued.user_id == tester.id and queued.action == "review"
    failures = hit(queued, "payment_failures_per_user")
    assert failures["count"] == 5 and failures["window_s"] == 900
    assert failures["orders"] == [order_id]

    # The gateway delivering one notification twice counts it once.
    body, gateway_headers = SimPay(settings).payment_failed_webhook(intent["id"])
    once = client.post("/api/v1/payments/sim/webhook", content=body, headers=gateway_headers)
    again = client.post("/api/v1/payments/sim/webhook", content=body, headers=gateway_headers)
    assert (once.json()["status"], again.json()["status"]) == ("recorded", "duplicate")
    (queued,) = reviews(db_session, subject_type="user", event="payment_failed")
    assert queued.attempts == 2 and hit(queued, "payment_failures_per_user")["count"] == 6

    # The next card is not even tried: the checkout is refused and the order cancelled.
    refused = checkout(client, order_id, hdrs)
    assert refused.status_code == 403 and refused.json()["code"] == "RISK_BLOCKED"
    assert _order(db_session, order_id).status == "cancelled"
    (blocked,) = reviews(db_session, subject_type="order", subject_id=order_id)
    assert blocked.action == "block" and blocked.event == "checkout"
    assert hit(blocked, "payment_failures_per_user")["count"] == 6
    assert hit(blocked, "account_under_review")["open_reviews"] == 1
    assert refused.json()["reference"] == blocked.id


def test_a_failure_for_an_unknown_payment_is_refused(
    client_at: Callable[[str], TestClient], settings: Settings
) -> None:
    client = client_at("203.0.113.78")
    response = decline_over_webhook(client, settings, "00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404 and response.json()["code"] == "UNKNOWN_PAYMENT_INTENT"
