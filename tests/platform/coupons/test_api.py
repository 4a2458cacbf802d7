"""The coupons and points API: staff and ops make templates and issue (audited, scoped to
their merchant), shoppers see and apply them, every refusal is a problem body with a code."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.coupons.support import pay, template
from tests.platform.factories import auth_header, make_order, make_product, make_sku, make_user
from tuanbox.audit.models import AuditEntry
from tuanbox.coupons.services import issue_one
from tuanbox.db.base import utcnow
from tuanbox.points import services as points
from tuanbox.settings import Settings

PROBLEM = "application/problem+json"


def _template_body(**kw: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "¥5 off ¥39",
        "kind": "amount_off",
        "amount_off_cents": 500,
        "threshold_cents": 3900,
        "valid_from": (utcnow() - timedelta(days=1)).isoformat(),
        "valid_until": (utcnow() + timedelta(days=30)).isoformat(),
    }
    body.update(kw)
    return body


def test_staff_make_and_issue_their_merchants_coupons(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    product = make_product(db_session)
    staff = make_user(db_session, "merchant_staff", product.merchant_id)
    rival = make_user(db_session, "merchant_staff", make_product(db_session).merchant_id)
    shopper = make_user(db_session)
    made = client.post(
        "/api/v1/coupon-templates", json=_template_body(), headers=auth_header(settings, staff)
    )
    assert made.status_code == 201, made.text
    template_id = made.json()["id"]
    assert made.json()["merchant_id"] == product.merchant_id
    # Staff of another merchant neither see nor issue it.
    listed = client.get("/api/v1/coupon-templates", headers=auth_header(settings, rival)).json()
    assert template_id not in {t["id"] for t in listed}
    hidden = client.post(
        f"/api/v1/coupon-templates/{template_id}/issue",
        json={"key": "k", "user_ids": [shopper.id]},
        headers=auth_header(settings, rival),
    )
    assert hidden.status_code == 404 and hidden.json()["code"] == "COUPON_TEMPLATE_NOT_FOUND"
    other = client.post(
        "/api/v1/coupon-templates",
        json=_template_body(merchant_id=make_product(db_session).merchant_id),
        headers=auth_header(settings, staff),
    )
    assert other.status_code == 403
    for attempt in range(2):  # a retry with the same key issues nothing more
        issued = client.post(
            f"/api/v1/coupon-templates/{template_id}/issue",
            json={"key": "spring", "user_ids": [shopper.id, staff.id]},
            headers=auth_header(settings, staff),
        )
        assert issued.status_code == 200, issued.text
        assert issued.json() == {
            "issued": 1 - attempt,
            "replayed": attempt,
            "skipped": {staff.id: "NOT_A_SHOPPER"},
        }
    audit = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.subject_id == template_id)
    ).all()
    assert audit == ["coupon.template_created", "coupon.issued", "coupon.issued"]
    mine = client.get("/api/v1/me/coupons", headers=auth_header(settings, shopper)).json()
    assert [(c["template_id"], c["status"]) for c in mine] == [(template_id, "available")]


def test_bad_templates_are_problems(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ops = make_user(db_session, "ops")
    headers = auth_header(settings, ops)
    cases = [
        _template_body(amount_off_cents=0),
        _template_body(kind="percent_off", amount_off_cents=0, percent_off=0),
        _template_body(valid_until=(utcnow() - timedelta(days=2)).isoformat()),
        _template_body(valid_from="2026-01-01T00:00:00"),  # no time zone
        _template_body(name="\x00"),
    ]
    for body in cases:
        answer = client.post("/api/v1/coupon-templates", json=body, headers=headers)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith(PROBLEM)
    missing = client.post(
        "/api/v1/coupon-templates", json=_template_body(merchant_id="nope"), headers=headers
    )
    assert missing.status_code == 404
    both = client.post(
        "/api/v1/coupon-templates/x/issue",
        json={"key": "k", "rule": True, "user_ids": ["u"]},
        headers=headers,
    )
    assert both.status_code == 422


def test_shopper_sees_applicable_coupons_applies_and_pays_less(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    headers = auth_header(settings, shopper)
    sku = make_sku(db_session, price_cents=2000, stock=20)
    order = make_order(db_session, user=shopper, sku=sku, qty=2)
    good = issue_one(db_session, template(db_session, threshold_cents=3900).id, shopper.id, "g")
    high = issue_one(db_session, template(db_session, threshold_cents=9900).id, shopper.id, "h")
    solo = issue_one(db_session, template(db_session, stackable=False).id, shopper.id, "s")
    listed = client.get(f"/api/v1/orders/{order.id}/coupons", headers=headers)
    assert listed.status_code == 200
    view = {
        c["coupon"]["id"]: (c["applicable"], c["discount_cents"], c["reason"])
        for c in listed.json()
    }
    assert view[good.id] == (True, 500, None)
    assert view[high.id] == (False, 0, "COUPON_THRESHOLD_NOT_MET")
    refused = client.put(
        f"/api/v1/orders/{order.id}/discount",
        json={"coupon_ids": [good.id, solo.id]},
        headers=headers,
    )
    assert refused.status_code == 409 and refused.json()["code"] == "STACKING_REFUSED"
    refused = client.put(
        f"/api/v1/orders/{order.id}/discount", json={"coupon_ids": [high.id]}, headers=headers
    )
    assert refused.json()["code"] == "COUPON_NOT_APPLICABLE"
    assert refused.headers["content-type"].startswith(PROBLEM)
    points.post(db_session, shopper.id, "gift", "earn", 50)
    applied = client.put(
        f"/api/v1/orders/{order.id}/discount",
        json={"coupon_ids": [good.id], "points": 50},
        headers=headers,
    )
    assert applied.status_code == 200, applied.text
    body = applied.json()
    assert (body["discount_cents"], body["payable_cents"]) == (550, 3450)
    assert [line["coupon_cents"] + line["points_cents"] for line in body["lines"]] == [275, 275]
    over = client.put(f"/api/v1/orders/{order.id}/discount", json={"points": 51}, headers=headers)
    assert over.status_code == 409 and over.json()["code"] == "POINTS_INSUFFICIENT"
    got = client.get(f"/api/v1/orders/{order.id}", headers=headers).json()
    assert got["discount_cents"] == 550
    pay(db_session, settings, order)
    assert order.paid_cents == 3450
    locked = client.put(f"/api/v1/orders/{order.id}/discount", json={}, headers=headers)
    assert locked.status_code == 409 and locked.json()["code"] == "DISCOUNT_LOCKED"
    # Ops refund one unit: what was paid for it.
    ops = make_user(db_session, "ops")
    unit = client.post(
        f"/api/v1/orders/{order.id}/unit-refunds",
        json={"units": 1, "reason": "crushed box"},
        headers={**auth_header(settings, ops), "Idempotency-Key": "u1"},
    )
    assert unit.status_code == 201, unit.text
    assert unit.json()["amount_cents"] == 2000 - 275
    too_many = client.post(
        f"/api/v1/orders/{order.id}/unit-refunds",
        json={"units": 2, "reason": "the rest and more"},
        headers=auth_header(settings, ops),
    )
    assert too_many.status_code == 409
    # Someone else's order reads as missing.
    stranger = make_user(db_session)
    hidden = client.get(
        f"/api/v1/orders/{order.id}/coupons", headers=auth_header(settings, stranger)
    )
    assert hidden.status_code == 404


def test_points_api_and_buying_a_coupon(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    headers = auth_header(settings, shopper)
    tpl = template(db_session, points_cost=300)
    short = client.post("/api/v1/me/points/coupons", json={"template_id": tpl.id}, headers=headers)
    assert short.status_code == 409 and short.json()["code"] == "POINTS_INSUFFICIENT"
    points.post(db_session, shopper.id, "gift", "earn", 500)
    keyed = {**headers, "Idempotency-Key": "buy-1"}
    first = client.post("/api/v1/me/points/coupons", json={"template_id": tpl.id}, headers=keyed)
    again = client.post("/api/v1/me/points/coupons", json={"template_id": tpl.id}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    mine = client.get("/api/v1/me/points", headers=headers).json()
    assert (mine["balance"], mine["debt"]) == (200, 0)
    assert [e["kind"] for e in mine["entries"]] == ["redeem", "earn"]
    missing = client.post(
        "/api/v1/me/points/coupons", json={"template_id": "nope"}, headers=headers
    )
    assert missing.status_code == 404
