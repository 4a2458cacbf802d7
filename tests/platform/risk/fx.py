"""Helpers of the risk tests: shoppers of a given age, sales and campaigns, paying, reviews."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header
from tests.platform.groupbuy.factories import Shop
from tuanbox.accounts.models import Role, User
from tuanbox.db.base import utcnow
from tuanbox.payments.simpay import SimPay
from tuanbox.risk.models import RiskHold, RiskReview, RiskSignal
from tuanbox.settings import Settings


def shoppers(session: Session, n: int, *, age_days: float = 0) -> list[User]:
    """`n` shopper accounts created `age_days` ago."""
    created = utcnow() - timedelta(days=age_days)
    users = [
        User(role=Role.SHOPPER, display_name=f"shopper {i}", created_at=created) for i in range(n)
    ]
    session.add_all(users)
    session.flush()
    return users


def headers(settings: Settings, user: User, device: str | None = None, **extra: str) -> dict:
    out = {**auth_header(settings, user), **extra}
    if device is not None:
        out["X-Device-ID"] = device
    return out


def start_flash_sale(client: TestClient, settings: Settings, shop: Shop, cap: int) -> str:
    now = utcnow()
    staff = User(id=shop.staff_id, role="merchant_staff", merchant_id=shop.merchant_id)
    r = client.post(
        "/api/v1/flash-sales",
        headers=auth_header(settings, staff),
        json={
            "sku_id": shop.sku_id,
            "title": "Midnight durian",
            "price_cents": 990,
            "stock_cap": cap,
            "per_user_limit": 1,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def reserve(client: TestClient, sale_id: str, hdrs: dict[str, str], key: str) -> str:
    r = client.post(
        f"/api/v1/flash-sales/{sale_id}/reservations",
        json={"qty": 1},
        headers={**hdrs, "Idempotency-Key": key},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["order_id"])


def checkout(client: TestClient, order_id: str, hdrs: dict[str, str]) -> Any:
    return client.post(
        f"/api/v1/orders/{order_id}/payments", json={"provider": "sim"}, headers=hdrs
    )


def pay_over_webhook(
    client: TestClient,
    session: Session,
    settings: Settings,
    intent: dict[str, Any],
    payer_id: str | None = None,
) -> str:
    """The gateway charges the intent and tells us by signed webhook (with the payer)."""
    sim = SimPay(settings)
    charge = sim.charge(session, intent["id"], intent["amount_cents"])
    body, hdrs = sim.payment_webhook(charge, payer_id=payer_id)
    r = client.post("/api/v1/payments/sim/webhook", content=body, headers=hdrs)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def decline_over_webhook(client: TestClient, settings: Settings, intent_id: str) -> Any:
    body, hdrs = SimPay(settings).payment_failed_webhook(intent_id)
    return client.post("/api/v1/payments/sim/webhook", content=body, headers=hdrs)


def reviews(session: Session, **where: Any) -> list[RiskReview]:
    query = sa.select(RiskReview).filter_by(**where).order_by(RiskReview.id)
    return list(session.scalars(query.execution_options(populate_existing=True)))


def held(session: Session, review_id: int) -> set[str]:
    rows = session.scalars(sa.select(RiskHold.order_id).where(RiskHold.review_id == review_id))
    return set(rows)


def hit(review: RiskReview, rule: str) -> dict[str, Any]:
    found = [h for h in review.hits if h["rule"] == rule]
    assert found, f"review {review.id} has no {rule} hit: {review.hits}"
    return found[0]


def signal_values(session: Session) -> list[str]:
    return list(session.scalars(sa.select(RiskSignal.value)))
