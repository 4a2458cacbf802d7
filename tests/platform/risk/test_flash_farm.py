"""Flash-sale attacks through the HTTP API: a device farm is blocked, a carrier NAT is not."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import make_shop
from tests.platform.risk.fx import (
    checkout,
    headers,
    hit,
    reserve,
    reviews,
    shoppers,
    signal_values,
    start_flash_sale,
)
from tuanbox.flashsale.models import FlashSale
from tuanbox.orders.models import Order
from tuanbox.risk.models import RiskSignal
from tuanbox.settings import Settings


def _order(session: Session, order_id: str) -> Order:
    order = session.scalars(
        sa.select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).one()
    return order


def test_twenty_fresh_accounts_on_one_phone_buying_a_flash_item_are_blocked(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """A scalper registers twenty accounts on one phone to beat the one-per-shopper limit."""
    client = client_at("203.0.113.50")
    shop = make_shop(db_session)
    sale_id = start_flash_sale(client, settings, shop, cap=50)
    farm = shoppers(db_session, 20)  # all registered today
    phone = "android-7c1e9a04d2b3"

    attempts = []
    for i, user in enumerate(farm):
        hdrs = headers(settings, user, phone)
        order_id = reserve(client, sale_id, hdrs, key=f"farm-{i:03d}-{uuid.uuid4().hex[:8]}")
        attempts.append((user.id, order_id, checkout(client, order_id, hdrs)))

    # Three accounts on one phone is a family; the fourth is a farm.
    assert [r.status_code for _, _, r in attempts[:3]] == [201, 201, 201]
    for _, order_id, response in attempts[3:]:
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "RISK_BLOCKED"
        assert _order(db_session, order_id).status == "cancelled"
    for _, order_id, _ in attempts[:3]:
        assert _order(db_session, order_id).status == "pending_payment"

    blocks = reviews(db_session, action="block")
    assert [(r.subject_type, r.subject_id) for r in blocks] == [
        ("order", order_id) for _, order_id, _ in attempts[3:]
    ]
    fourth = blocks[0]
    assert attempts[3][2].json()["reference"] == fourth.id
    assert fourth.status == "open" and fourth.event == "order"
    assert fourth.score >= settings.risk_block_score
    per_device = hit(fourth, "accounts_per_device")
    assert per_device["count"] == 4 and per_device["threshold"] == 4
    assert set(per_device["accounts"]) == {user_id for user_id, _, _ in attempts[:4]}
    fresh = hit(fourth, "new_account_flash_only")
    assert fresh["flash_orders"] == 1 and fresh["other_orders"] == 0
    last = blocks[-1]
    assert hit(last, "accounts_per_device")["count"] == 20
    assert hit(last, "orders_per_device")["count"] == 20
    assert len(hit(last, "orders_per_device")["orders"]) == 20

    # Blocked orders gave their units back to the sale: only the first three are sold.
    sale = db_session.get(FlashSale, sale_id)
    db_session.refresh(sale)
    assert sale is not None and sale.remaining == 50 - 3
    # The phone's id is nowhere in clear: neither in the evidence nor in the signals.
    assert phone not in json.dumps([r.hits for r in blocks])
    assert all(phone not in value for value in signal_values(db_session))


def test_sixty_shoppers_behind_one_carrier_nat_each_on_their_own_phone_are_not_blocked(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    """The start of a sale in a housing estate: one carrier-grade NAT address, sixty phones."""
    client = client_at("100.64.12.34")  # RFC 6598 shared address space
    shop = make_shop(db_session)
    sale_id = start_flash_sale(client, settings, shop, cap=100)
    crowd = shoppers(db_session, 60, age_days=200)

    for i, user in enumerate(crowd):
        hdrs = headers(settings, user, f"ios-{uuid.uuid4().hex[:16]}")
        regular = client.post(
            "/api/v1/orders", json={"sku_id": shop.sku_id, "qty": 1}, headers=hdrs
        )
        assert regular.status_code == 201, regular.text
        assert checkout(client, regular.json()["id"], hdrs).status_code == 201
        flash = reserve(client, sale_id, hdrs, key=f"nat-{i:03d}-{uuid.uuid4().hex[:8]}")
        response = checkout(client, flash, hdrs)
        assert response.status_code == 201, (i, response.text)

    assert reviews(db_session) == []
    held = db_session.scalar(sa.select(sa.func.count()).where(Order.risk_hold.is_(True)))
    assert held == 0
    # The IP rules did see one address with sixty accounts and 120 orders — past their
    # thresholds — yet an IP alone scores too little to hold anyone.
    ip_users = db_session.scalar(
        sa.select(sa.func.count(sa.distinct(RiskSignal.user_id))).where(RiskSignal.kind == "ip")
    )
    ip_orders = db_session.scalar(
        sa.select(sa.func.count()).where(RiskSignal.kind == "ip", RiskSignal.event == "order")
    )
    assert ip_users == 60 and ip_orders == 120
