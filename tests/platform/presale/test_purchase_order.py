"""Pre-sale: at close, confirmed demand per SKU and lot becomes the supplier's purchase order."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import auth, fixed_spec, make_shop, make_shoppers, pay
from tuanbox.db.base import utcnow
from tuanbox.groupbuy import services
from tuanbox.groupbuy.closing import close_group
from tuanbox.groupbuy.models import Campaign
from tuanbox.settings import Settings


def test_purchase_order_totals_confirmed_demand(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    users = make_shoppers(db_session, 8)
    campaign = services.create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id, members=3, presale=True, lot_code="L2026-12", max_size=4),
    )
    now = utcnow()
    # Group A: 4 shoppers x 2 units, all paid → confirmed. Group B: 2 paid → failed.
    groups = []
    for members in (users[:4], users[4:6]):
        first = services.open_group(
            db_session, campaign_id=campaign.id, user_id=members[0], qty=2, now=now
        )
        joined = [first] + [
            services.join_group(db_session, group_id=first.group.id, user_id=u, qty=2, now=now)
            for u in members[1:]
        ]
        for j in joined:
            pay(db_session, settings, j.order_id)
        groups.append(first.group)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    url = f"/api/v1/campaigns/{campaign.id}/purchase-order"
    r = client.get(url, headers=staff)
    assert r.status_code == 409 and r.json()["code"] == "CAMPAIGN_NOT_CLOSED"

    for group in groups:
        db_session.refresh(group)
        close_group(db_session, group, now + timedelta(days=2))
    db_session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(ends_at=now - timedelta(seconds=1))
    )
    db_session.flush()

    r = client.get(url, headers=staff)
    assert r.status_code == 200, r.text
    po = r.json()
    assert po["total_qty"] == 8
    assert po["lines"] == [
        {
            "sku_id": shop.sku_id,
            "sku_name": "Blueberries 500 g / 500 g",
            "gtin": None,
            "lot_code": "L2026-12",
            "qty": 8,
            "orders": 4,
            "groups": 1,
        }
    ]
    r = client.get(url + ".csv", headers=staff)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(row["sku_id"], row["lot_code"], row["qty"]) for row in rows] == [
        (shop.sku_id, "L2026-12", "8")
    ]
    # Other merchants' staff and shoppers do not see it.
    assert client.get(url, headers=auth(settings, users[0])).status_code == 403
    other = make_shop(db_session)
    assert (
        client.get(
            url, headers=auth(settings, other.staff_id, "merchant_staff", other.merchant_id)
        ).status_code
        == 403
    )


def test_regular_campaign_has_no_purchase_order(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    campaign = services.create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id),
    )
    r = client.get(
        f"/api/v1/campaigns/{campaign.id}/purchase-order",
        headers=auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id),
    )
    assert r.status_code == 409 and r.json()["code"] == "NOT_PRESALE"
