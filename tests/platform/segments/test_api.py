"""The segments and experiments API as merchant staff: create and count, push once per key,
experiments and their results; bad input answers a problem body, other merchants' objects 404."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import auth, fixed_spec, make_shop, make_shoppers
from tests.platform.segments.support import paid_order
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.services import create_campaign
from tuanbox.segments import rfm
from tuanbox.settings import Settings


def test_segments_and_pushes(client: TestClient, db_session: Session, settings: Settings) -> None:
    shop, other = make_shop(db_session), make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    theirs = auth(settings, other.staff_id, "merchant_staff", other.merchant_id)
    sku = db_session.get(Sku, shop.sku_id)
    assert sku is not None
    users = make_shoppers(db_session, 3)
    for u in users:
        paid_order(db_session, sku, u, paid_at=utcnow() - timedelta(days=45), cents=1990)
    rfm.recompute(db_session)
    bad = client.post(
        "/api/v1/segments", json={"name": "x", "rule": {"kind": "nope"}}, headers=staff
    )
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(
        "application/problem+json"
    )
    made = client.post(
        "/api/v1/segments", json={"name": "dormant", "rule": {"kind": "dormant", "days": 30}},
        headers=staff,
    )  # fmt: skip
    assert made.status_code == 201 and made.json()["members"] == 3
    segment_id = made.json()["id"]
    listed = client.get("/api/v1/segments", headers=staff).json()
    assert [(s["name"], s["members"]) for s in listed] == [("dormant", 3)]
    assert client.get("/api/v1/segments", headers=theirs).json() == []
    body = {"kind": "message", "key": "wake-1", "message": "好久不见"}
    first = client.post(f"/api/v1/segments/{segment_id}/pushes", json=body, headers=staff)
    assert first.status_code == 200 and first.json()["sent"] == 3
    again = client.post(f"/api/v1/segments/{segment_id}/pushes", json=body, headers=staff)
    assert again.json()["sent"] == 3  # the same push: nobody got it twice
    limited = client.post(
        f"/api/v1/segments/{segment_id}/pushes", json={**body, "key": "wake-2"}, headers=staff
    )
    assert limited.json()["rate_limited"] == 3 and limited.json()["sent"] == 0
    no_message = client.post(
        f"/api/v1/segments/{segment_id}/pushes", json={"kind": "message", "key": "k"}, headers=staff
    )
    assert no_message.status_code == 422 and no_message.json()["code"] == "INVALID_INPUT"
    assert (
        client.post(f"/api/v1/segments/{segment_id}/pushes", json=body, headers=theirs).status_code
        == 404
    )
    push_id = first.json()["push_id"]
    assert client.get(f"/api/v1/pushes/{push_id}", headers=staff).json()["sent"] == 3
    assert client.get(f"/api/v1/pushes/{push_id}", headers=theirs).status_code == 404


def test_experiments_api(client: TestClient, db_session: Session, settings: Settings) -> None:
    shop, other = make_shop(db_session), make_shop(db_session)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    theirs = auth(settings, other.staff_id, "merchant_staff", other.merchant_id)
    campaign = create_campaign(
        db_session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id, members=3, max_size=3),
    )  # fmt: skip
    arms = [{"key": "a", "weight": 1, "value": "A"}, {"key": "b", "weight": 1, "value": "B"}]
    body = {"campaign_id": campaign.id, "name": "t", "field": "title", "arms": arms}
    price = client.post("/api/v1/experiments", json={**body, "field": "price"}, headers=staff)
    assert price.status_code == 422
    assert client.post("/api/v1/experiments", json=body, headers=theirs).status_code == 404
    made = client.post("/api/v1/experiments", json=body, headers=staff)
    assert made.status_code == 201
    got = made.json()
    assert [a["key"] for a in got["arms"]] == ["a", "b"] and got["arms"][1]["under_sample"]
    assert client.post("/api/v1/experiments", json=body, headers=staff).status_code == 409
    url = f"/api/v1/experiments/{got['id']}"
    assert client.get(url, headers=theirs).status_code == 404
    assert client.post(url + "/stop", headers=staff).json()["status"] == "stopped"
    assert [e["id"] for e in client.get("/api/v1/experiments", headers=staff).json()] == [got["id"]]
