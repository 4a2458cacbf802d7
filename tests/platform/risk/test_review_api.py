"""The review queue over HTTP: a held order waits paid until ops approve; only ops decide."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_merchant, make_sku, make_user
from tests.platform.risk.fx import checkout, headers, hit, pay_over_webhook, reviews, shoppers
from tuanbox.accounts.models import User
from tuanbox.lockers.models import Station
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

PHONE = "android-c0ffee000042"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Configured, not a default: one order from a device is enough to hold it for review.
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
        risk_rules={"orders_per_device": {"threshold": 1, "score": 50}},
    )


def _order(session: Session, order_id: str) -> Order:
    return session.scalars(
        sa.select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).one()


def _held_order(client: TestClient, session: Session, settings: Settings) -> tuple[str, int]:
    station = Station(
        id=f"st-{uuid.uuid4().hex[:8]}", name="Lobby", address="1 Rd", lat=31, lon=121
    )
    session.add(station)
    session.flush()
    (shopper,) = shoppers(session, 1, age_days=100)
    sku = make_sku(session, stock=5)
    r = client.post(
        "/api/v1/orders",
        json={"sku_id": sku.id, "qty": 1, "station_id": station.id},
        headers=headers(settings, shopper, PHONE),
    )
    assert r.status_code == 201, r.text
    (review,) = reviews(session, subject_type="order", subject_id=r.json()["id"])
    return r.json()["id"], review.id


def test_a_held_order_is_paid_but_confirmed_only_when_ops_approve(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    client = client_at("203.0.113.30")
    order_id, review_id = _held_order(client, db_session, settings)
    order = _order(db_session, order_id)
    assert order.risk_hold is True
    owner = db_session.get(User, order.user_id)
    assert owner is not None
    owner_hdrs = headers(settings, owner, PHONE)
    intent = checkout(client, order_id, owner_hdrs)
    assert intent.status_code == 201, intent.text
    assert pay_over_webhook(client, db_session, settings, intent.json()) == "applied"
    # Its merchant confirms on payment, but the hold comes first: paid, awaiting review.
    order = _order(db_session, order_id)
    assert (order.status, order.awaiting) == ("paid", "review")
    seen = client.get(f"/api/v1/orders/{order_id}", headers=owner_hdrs).json()
    assert seen["awaiting"] == "review"

    ops = make_user(db_session, "ops")
    review = client.get(
        f"/api/v1/ops/risk/reviews/{review_id}", headers=auth_header(settings, ops)
    ).json()
    assert review["held_orders"] == [order_id] and review["attempts"] == 2  # order, checkout
    assert hit(reviews(db_session, id=review_id)[0], "orders_per_device")["count"] >= 1
    done = client.post(
        f"/api/v1/ops/risk/reviews/{review_id}/approve",
        json={"note": "regular customer, new phone"},
        headers=auth_header(settings, ops),
    )
    assert done.status_code == 200, done.text
    assert done.json()["confirmed"] == [order_id]
    order = _order(db_session, order_id)
    assert (order.status, order.risk_hold) == ("confirmed", False)


def test_only_ops_and_admins_see_and_decide_reviews(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    client = client_at("203.0.113.31")
    _, review_id = _held_order(client, db_session, settings)
    merchant = make_merchant(db_session)
    base = "/api/v1/ops/risk"
    calls = [
        ("get", f"{base}/reviews", None),
        ("get", f"{base}/reviews/{review_id}", None),
        ("get", f"{base}/rules", None),
        ("post", f"{base}/reviews/{review_id}/approve", {"note": "looks fine to me"}),
        ("post", f"{base}/reviews/{review_id}/reject", {"note": "looks bad to me"}),
    ]
    outsiders = [
        make_user(db_session, "shopper"),
        make_user(db_session, "merchant_staff", merchant.id),
        make_user(db_session, "courier", merchant.id),
    ]

    def call(method: str, url: str, body: dict | None, hdrs: dict | None = None) -> Response:
        if method == "get":
            return client.get(url, headers=hdrs)
        return client.post(url, json=body, headers=hdrs)

    for method, url, body in calls:
        assert call(method, url, body).status_code == 401, url
        for user in outsiders:
            r = call(method, url, body, auth_header(settings, user))
            assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN", (url, user.role)
    # The page's own actions (cookie or bearer) answer the same.
    page_action = f"/ops/risk/reviews/{review_id}/approve"
    r = client.post(
        page_action, json={"note": "x" * 5}, headers=auth_header(settings, outsiders[0])
    )
    assert r.status_code == 403
    assert client.post(page_action, json={"note": "x" * 5}).status_code == 401
    assert reviews(db_session, id=review_id)[0].status == "open"

    admin = make_user(db_session, "admin")
    rules = client.get(f"{base}/rules", headers=auth_header(settings, admin)).json()
    assert rules["rules"]["orders_per_device"]["threshold"] == 1
    assert rules["review_score"] == 50


def test_the_ops_page_lists_reviews_with_their_evidence(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    client = client_at("203.0.113.32")
    order_id, review_id = _held_order(client, db_session, settings)
    anonymous = client.get("/ops/risk", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/ops/login"
    shopper = make_user(db_session, "shopper")
    r = client.get("/ops/risk", headers=auth_header(settings, shopper), follow_redirects=False)
    assert r.status_code == 303

    ops = make_user(db_session, "ops")
    page = client.get("/ops/risk", headers=auth_header(settings, ops))
    assert page.status_code == 200
    assert f'data-review="{review_id}"' in page.text and "orders_per_device" in page.text
    assert order_id[:8] in page.text and 'data-action="risk-reject"' in page.text
    assert PHONE not in page.text
    done = client.post(
        f"/ops/risk/reviews/{review_id}/reject",
        json={"note": "stolen phone, customer called"},
        headers=auth_header(settings, ops),
    )
    assert done.status_code == 200 and done.json()["cancelled"] == [order_id]
    rejected = client.get("/ops/risk?status=rejected", headers=auth_header(settings, ops))
    assert "stolen phone, customer called" in rejected.text
    assert "No open reviews." in client.get("/ops/risk", headers=auth_header(settings, ops)).text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/reviews/0/approve", {"note": "fine by me"}),
        (f"/reviews/{2**63}/approve", {"note": "fine by me"}),
        ("/reviews/abc/approve", {"note": "fine by me"}),
        ("/reviews/1/approve", {"note": "no"}),
        ("/reviews/1/approve", {"note": "bell \x07 rings"}),
        ("/reviews/1/approve", {"note": "x" * 501}),
        ("/reviews/1/approve", {}),
        ("/reviews?status=pending", None),
        ("/reviews?limit=0", None),
        (f"/reviews?before_id={2**63}", None),
    ],
)
def test_bad_input_is_a_422_problem(
    client: TestClient, db_session: Session, settings: Settings, path: str, body: dict | None
) -> None:
    ops = auth_header(settings, make_user(db_session, "ops"))
    url = f"/api/v1/ops/risk{path}"
    r = (
        client.post(url, json=body, headers=ops)
        if body is not None
        else client.get(url, headers=ops)
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")


def test_unknown_review_and_nul(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ops = auth_header(settings, make_user(db_session, "ops"))
    r = client.post(
        "/api/v1/ops/risk/reviews/987654321/reject", json={"note": "fraud ring"}, headers=ops
    )
    assert r.status_code == 404 and r.json()["code"] == "REVIEW_NOT_FOUND"
    r = client.post(
        "/api/v1/ops/risk/reviews/987654321/reject", json={"note": "fraud\x00ring"}, headers=ops
    )
    assert r.status_code == 422
