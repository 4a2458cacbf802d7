"""Group-buy HTTP API and shopper page, through the app with the test's rolled-back session."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import auth, make_shop, make_shoppers, pay
from tuanbox.db.base import utcnow
from tuanbox.settings import Settings


def _campaign_body(sku_id: str, **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    body: dict[str, Any] = {
        "sku_id": sku_id,
        "title": "Blueberries, tiered",
        "kind": "tiered",
        "tiers": [
            {"members": 3, "price_cents": 900},
            {"members": 5, "price_cents": 800},
        ],
        "max_size": 5,
        "starts_at": (now - timedelta(minutes=1)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat(),
        "per_user_limit": 1,
    }
    body.update(overrides)
    return body


def test_campaign_lifecycle_over_http(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    users = make_shoppers(db_session, 6)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)

    r = client.post(
        "/api/v1/campaigns", json=_campaign_body(shop.sku_id), headers=auth(settings, users[0])
    )
    assert r.status_code == 403
    r = client.post("/api/v1/campaigns", json=_campaign_body(shop.sku_id), headers=staff)
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["min_size"] == 3 and [t["price_cents"] for t in campaign["tiers"]] == [900, 800]
    assert client.get(f"/api/v1/campaigns/{campaign['id']}").json()["id"] == campaign["id"]

    leader = {**auth(settings, users[0]), "Idempotency-Key": "open-1-abcdef"}
    first = client.post(
        f"/api/v1/campaigns/{campaign['id']}/groups", json={"qty": 1}, headers=leader
    )
    assert first.status_code == 201, first.text
    group_id = first.json()["group"]["id"]

    for u in users[1:5]:
        r = client.post(f"/api/v1/groups/{group_id}/join", json={}, headers=auth(settings, u))
        assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/groups/{group_id}/join", json={}, headers=auth(settings, users[5]))
    assert r.status_code == 409 and r.json()["code"] == "GROUP_FULL"
    r = client.post(f"/api/v1/groups/{group_id}/join", json={}, headers=auth(settings, users[1]))
    assert r.status_code == 409 and r.json()["code"] == "ALREADY_MEMBER"

    view = client.get(f"/api/v1/groups/{group_id}").json()
    assert view["progress"]["members"] == 5 and view["progress"]["needed"] == 3
    assert (
        view["progress"]["next_tier_members"] == 3
        and view["progress"]["next_tier_price_cents"] == 900
    )
    assert view["share_url"].endswith(f"/g/{group_id}")

    r = client.post(f"/api/v1/groups/{group_id}/leave", headers=auth(settings, users[0]))
    assert r.status_code == 200
    assert r.json()["leader_user_id"] == users[1] and r.json()["progress"]["members"] == 4

    page = client.get(f"/g/{group_id}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "拼团中" in page.text and "3人" in page.text and "more needed" in page.text


def test_repeated_idempotency_key_returns_the_first_group(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    user = make_shoppers(db_session, 1)[0]
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    campaign = client.post(
        "/api/v1/campaigns", json=_campaign_body(shop.sku_id), headers=staff
    ).json()
    leader = {**auth(settings, user), "Idempotency-Key": "open-1-abcdef"}
    url = f"/api/v1/campaigns/{campaign['id']}/groups"
    first = client.post(url, json={"qty": 1}, headers=leader)
    again = client.post(url, json={"qty": 1}, headers=leader)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["group"]["id"] == again.json()["group"]["id"]


def test_bad_campaigns_are_422_with_field_errors(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    rising = _campaign_body(
        shop.sku_id, tiers=[{"members": 3, "price_cents": 800}, {"members": 5, "price_cents": 900}]
    )
    r = client.post("/api/v1/campaigns", json=rising, headers=staff)
    assert r.status_code == 422 and r.json()["code"] == "INVALID_CAMPAIGN"
    r = client.post(
        "/api/v1/campaigns", json=_campaign_body(shop.sku_id, max_size=0), headers=staff
    )
    assert r.status_code == 422 and any(e["field"] == "max_size" for e in r.json()["errors"])
    naive = _campaign_body(shop.sku_id, starts_at="2026-12-01T00:00:00")
    assert client.post("/api/v1/campaigns", json=naive, headers=staff).status_code == 422


def test_paid_group_page_shows_success(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    from tuanbox.groupbuy.closing import close_group
    from tuanbox.groupbuy.models import Group

    shop = make_shop(db_session)
    users = make_shoppers(db_session, 3)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    campaign = client.post(
        "/api/v1/campaigns", json=_campaign_body(shop.sku_id), headers=staff
    ).json()
    opened = client.post(
        f"/api/v1/campaigns/{campaign['id']}/groups", json={}, headers=auth(settings, users[0])
    ).json()
    orders = [opened["order_id"]] + [
        client.post(
            f"/api/v1/groups/{opened['group']['id']}/join", json={}, headers=auth(settings, u)
        ).json()["order_id"]
        for u in users[1:]
    ]
    for order_id in orders:
        pay(db_session, settings, order_id)
    group = db_session.get(Group, opened["group"]["id"])
    assert group is not None
    close_group(db_session, group, group.deadline_at + timedelta(seconds=1))
    view = client.get(f"/api/v1/groups/{group.id}").json()
    assert view["status"] == "confirmed" and view["final_unit_price_cents"] == 900
    assert all(m["paid"] for m in view["members"])
    assert "拼团成功" in client.get(f"/g/{group.id}").text
