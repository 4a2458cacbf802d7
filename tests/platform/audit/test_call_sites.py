"""The audited actions carry what changed: prices, stock, refunds, remote opens, alerts, keys."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.platform.audit.conftest import Committed
from tests.platform.factories import auth_header, make_order, make_product, make_sku, make_user
from tests.platform.fulfilment import fx
from tuanbox.accounts.cli import app as users_app
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor
from tuanbox.db.base import utcnow
from tuanbox.db.engine import bind_settings
from tuanbox.fulfilment import alerts
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments import resolution
from tuanbox.payments.services import handle_event, process_refund, refund, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings, get_settings


def entry(session: Session, action: str, subject_id: str) -> AuditEntry:
    return session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == action, AuditEntry.subject_id == subject_id
        )
    ).one()


def paid_order(session: Session, settings: Settings, price: int) -> Order:
    sim = SimPay(settings)
    order = make_order(session, sku=make_sku(session, price_cents=price))
    intent = start_checkout(session, order, sim)
    body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
    assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"
    transition(session, order, "confirmed", actor=fx.TEST_ACTOR, reason="paid")
    return order


def test_refund_records_what_stays_refundable(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    order = paid_order(db_session, settings, 3000)
    ops = make_user(db_session, "ops")
    reply = client.post(
        f"/api/v1/orders/{order.id}/refunds",
        json={"amount_cents": 300, "reason": "bruised fruit"},
        headers=auth_header(settings, ops),
    )
    assert reply.status_code == 201, reply.text
    audit = entry(db_session, "order.refund", order.id)
    assert audit.before == {"refundable_cents": 3000} and audit.after == {"refundable_cents": 2700}
    assert audit.ip == "testclient" and audit.seq is not None


def test_failed_refund_retry_and_resolution_record_before_and_after(
    db_session: Session, settings: Settings
) -> None:
    order = paid_order(db_session, settings, 2000)
    ops = Actor("u-ops", "ops")
    owed = [refund(db_session, order, 500, "goodwill", key=f"k{i}:{order.id}") for i in (1, 2)]
    for row in owed:
        down = SimPay(settings, fail_refunds=100)
        for _ in range(3):
            process_refund(db_session, row.id, down, max_attempts=3)
        assert row.status == "failed"
    resolution.retry_failed(db_session, owed[0].id, ops, "balance topped up")
    resolution.resolve_failed(db_session, owed[1].id, ops, "bank transfer", "ICBC-1")
    db_session.commit()
    retried = entry(db_session, "refund.retry", owed[0].id)
    assert (retried.before, retried.after) == (
        {"status": "failed", "attempts": 3},
        {"status": "pending", "attempts": 0},
    )
    resolved = entry(db_session, "refund.resolve", owed[1].id)
    assert (resolved.before, resolved.after) == (
        {"status": "failed", "provider_refund_id": None},
        {"status": "resolved", "provider_refund_id": "ICBC-1"},
    )


def test_remote_open_and_alert_handling_record_before_and_after(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    bind_settings(db_session, settings)
    station = fx.make_station(db_session)
    locker, _ = fx.make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")])
    comp = locker.compartments[0]
    headers = auth_header(settings, make_user(db_session, "ops"))
    opened = client.post(
        f"/api/v1/lockers/{locker.id}/compartments/{comp.id}/open",
        json={"reason": "stuck parcel"},
        headers=headers,
    )
    assert opened.status_code == 202, opened.text
    audit = entry(db_session, "locker.remote_open", str(comp.id))
    assert audit.before == {"state": "free", "open_command": None}
    assert audit.after == {"state": "free", "open_command": opened.json()["id"]}

    alert = alerts.open_alert(
        db_session, kind="unlock_failed", locker_id=locker.id, compartment_id=None, detail="jam"
    )
    url = f"/api/v1/ops/alerts/{alert.id}"
    assert client.post(f"{url}/acknowledge", json={"note": "on my way"}, headers=headers).is_success
    assert client.post(f"{url}/resolve", json={"note": "lock replaced"}, headers=headers).is_success
    acked = entry(db_session, "alert.acknowledge", str(alert.id))
    assert acked.before == {"status": "open", "note": None}
    assert acked.after == {"status": "acknowledged", "note": "on my way"}
    resolved = entry(db_session, "alert.resolve", str(alert.id))
    assert resolved.before == {"status": "acknowledged", "note": "on my way"}
    assert resolved.after == {"status": "resolved", "note": "lock replaced"}
    assert resolved.seq == (acked.seq or 0) + 1


def test_prices_are_recorded_when_set(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    product = make_product(db_session)
    staff = make_user(db_session, "merchant_staff", product.merchant_id)
    headers = auth_header(settings, staff)
    sku = client.post(
        f"/api/v1/products/{product.id}/skus",
        json={"name": "2 kg", "price_cents": 3990, "stock_on_hand": 20},
        headers=headers,
    )
    assert sku.status_code == 201, sku.text
    created = entry(db_session, "sku.create", sku.json()["id"])
    assert created.before is None
    assert created.after == {"price_cents": 3990, "stock_on_hand": 20}
    start = utcnow() + timedelta(hours=1)
    sale = client.post(
        "/api/v1/flash-sales",
        json={
            "sku_id": sku.json()["id"],
            "title": "Midnight peaches",
            "price_cents": 990,
            "stock_cap": 5,
            "per_user_limit": 1,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=10)).isoformat(),
        },
        headers=headers,
    )
    assert sale.status_code == 201, sale.text
    audited = entry(db_session, "flash_sale.create", sale.json()["id"])
    assert audited.after["price_cents"] == 990 and audited.after["stock_cap"] == 5


def test_pii_key_rotation_is_audited(committed: Committed, monkeypatch: pytest.MonkeyPatch) -> None:
    old = committed.settings
    with committed.sessions.begin() as s:
        make_user(s, "shopper", phone="+8613800138000", settings=old)
    for key, value in {
        "TUANBOX_DATABASE_URL": committed.url,
        "TUANBOX_PII_KEY": "rotated-pii-key-" + "z" * 32,
        "TUANBOX_PII_KEY_ID": "k2",
        "TUANBOX_PII_KEYS": f'{{"k1": "{old.pii_key.get_secret_value()}"}}',
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(users_app, ["rotate-pii"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    with committed.sessions() as s:
        rotated = entry(s, "pii.rotate", "k2")
        assert rotated.actor_id == "cli" and rotated.details == {"fields": 1}
        assert rotated.after == {"key_id": "k2"}
