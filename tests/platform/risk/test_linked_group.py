"""A group filled by linked accounts is held at closing; ops approve or reject it over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_user
from tests.platform.groupbuy.factories import make_shop
from tests.platform.risk.fx import checkout, headers, held, hit, pay_over_webhook, reviews, shoppers
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.closing import close_group
from tuanbox.groupbuy.models import Group
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund
from tuanbox.risk.models import RiskReview
from tuanbox.settings import Settings

# Who joins, from which phone, saving which address, paying from which WeChat account. The
# ring's four accounts share a phone (a, d), an address typed two ways (a, b) and a wallet
# (b, c): no two-account link is suspicious alone, together they are one buyer.
MEMBERS = {
    "leader": ("ios-3f0c5a77e1d2", "Riverside Road 88, Flat 12", "o6_leader_openid_000000000"),
    "a": ("android-ring-0001", "Sunshine Garden Bldg 5, Room 301", "o6_ring_a_openid_0000000"),
    "b": ("android-ring-0002", "sunshine garden bldg 5,room 301", "o6_ring_wallet_shared_00"),
    "c": ("android-ring-0003", "Lakeside 7, Unit 2", "o6_ring_wallet_shared_00"),
    "d": ("android-ring-0001", "Hill Street 3", "o6_ring_d_openid_0000000"),
}


@dataclass
class Filled:
    group_id: str
    orders: dict[str, str]
    users: dict[str, str]
    review: RiskReview


def _order(session: Session, order_id: str) -> Order:
    return session.scalars(
        sa.select(Order).where(Order.id == order_id).execution_options(populate_existing=True)
    ).one()


def _fill_group(client: TestClient, session: Session, settings: Settings) -> Filled:
    shop = make_shop(session)
    staff = make_user(session, "merchant_staff", shop.merchant_id)
    now = utcnow()
    campaign = client.post(
        "/api/v1/campaigns",
        headers=auth_header(settings, staff),
        json={
            "sku_id": shop.sku_id,
            "title": "Hairy crabs, five to a group",
            "kind": "fixed",
            "tiers": [{"members": 5, "price_cents": 800}],
            "max_size": 5,
            "per_user_limit": 1,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
        },
    )
    assert campaign.status_code == 201, campaign.text
    accounts = dict(zip(MEMBERS, shoppers(session, 5, age_days=60), strict=True))
    orders: dict[str, str] = {}
    group_id = ""
    for name, (device, address, _) in MEMBERS.items():
        hdrs = headers(settings, accounts[name], device)
        saved = client.post("/api/v1/me/addresses", json={"text": address}, headers=hdrs)
        assert saved.status_code == 201, saved.text
        if name == "leader":
            r = client.post(
                f"/api/v1/campaigns/{campaign.json()['id']}/groups",
                json={"qty": 1},
                headers={**hdrs, "Idempotency-Key": f"open-{accounts[name].id}"},
            )
            group_id = r.json()["group"]["id"]
        else:
            r = client.post(f"/api/v1/groups/{group_id}/join", json={"qty": 1}, headers=hdrs)
        assert r.status_code == 201, r.text
        orders[name] = r.json()["order_id"]
    assert reviews(session) == [], "no single join looks suspicious"
    for name, (device, _, payer) in MEMBERS.items():
        intent = checkout(client, orders[name], headers(settings, accounts[name], device))
        assert intent.status_code == 201, intent.text
        assert pay_over_webhook(client, session, settings, intent.json(), payer) == "applied"
    assert reviews(session) == [], "no single payment looks suspicious"

    group = session.get(Group, group_id)
    assert group is not None
    session.refresh(group)
    assert group.status == "filled"
    close_group(session, group, utcnow())  # what the beat job's closer does next
    (review,) = reviews(session, subject_type="group")
    users = {name: user.id for name, user in accounts.items()}
    return Filled(group_id, orders, users, review)


def test_a_group_filled_by_linked_accounts_is_held_for_review(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    client = client_at("203.0.113.9")
    filled = _fill_group(client, db_session, settings)
    review, ring = filled.review, ["a", "b", "c", "d"]

    assert review.subject_id == filled.group_id and review.status == "open"
    assert review.action == "review" and review.user_id is None
    linked = hit(review, "linked_group")
    assert linked["members"] == 5 and linked["linked"] == 4
    assert linked["accounts"] == sorted(filled.users[n] for n in ring)
    assert linked["shared_keys"] == {"device": 1, "address": 1, "payer": 1}
    assert held(db_session, review.id) == {filled.orders[n] for n in ring}

    # The group succeeded; the leader's order goes on, the ring's wait for ops, paid.
    assert db_session.get(Group, filled.group_id).status == "confirmed"  # type: ignore[union-attr]
    assert _order(db_session, filled.orders["leader"]).status == "confirmed"
    for name in ring:
        order = _order(db_session, filled.orders[name])
        assert (order.status, order.awaiting, order.risk_hold) == ("paid", "review", True)
    # Evidence names accounts and blind indexes only: no address or openid in clear.
    evidence = json.dumps([review.hits, review.evidence])
    assert "Sunshine" not in evidence and "o6_ring" not in evidence


def test_ops_approve_a_held_group_and_its_orders_are_confirmed(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    client = client_at("203.0.113.10")
    filled = _fill_group(client, db_session, settings)
    ops = make_user(db_session, "ops")
    url = f"/api/v1/ops/risk/reviews/{filled.review.id}"

    listed = client.get("/api/v1/ops/risk/reviews", headers=auth_header(settings, ops))
    assert [r["id"] for r in listed.json()] == [filled.review.id]
    assert set(listed.json()[0]["held_orders"]) == {filled.orders[n] for n in "abcd"}

    note = {"note": "one family of four: called them, they share a phone and a wallet"}
    done = client.post(f"{url}/approve", json=note, headers=auth_header(settings, ops))
    assert done.status_code == 200, done.text
    assert sorted(done.json()["confirmed"]) == sorted(filled.orders[n] for n in "abcd")
    assert done.json()["review"]["status"] == "approved"
    assert done.json()["review"]["decided_by"] == ops.id
    for name in "abcd":
        order = _order(db_session, filled.orders[name])
        assert (order.status, order.risk_hold) == ("confirmed", False)
    audit = db_session.scalars(
        sa.select(AuditEntry).where(AuditEntry.subject_type == "risk_review")
    ).one()
    assert (audit.action, audit.actor_id, audit.reason) == (
        "risk.review.approved",
        ops.id,
        note["note"],
    )

    again = client.post(f"{url}/reject", json=note, headers=auth_header(settings, ops))
    assert again.status_code == 409 and again.json()["code"] == "REVIEW_ALREADY_DECIDED"


def test_ops_reject_a_held_group_and_the_ring_is_cancelled_and_refunded(
    client_at: Callable[[str], TestClient], db_session: Session, settings: Settings
) -> None:
    client = client_at("203.0.113.11")
    filled = _fill_group(client, db_session, settings)
    ops = make_user(db_session, "ops")
    url = f"/api/v1/ops/risk/reviews/{filled.review.id}/reject"

    done = client.post(
        url, json={"note": "scalper ring, same phone"}, headers=auth_header(settings, ops)
    )
    assert done.status_code == 200, done.text
    assert sorted(done.json()["cancelled"]) == sorted(filled.orders[n] for n in "abcd")
    for name in "abcd":
        assert _order(db_session, filled.orders[name]).status == "cancelled"
        refund = db_session.scalars(
            sa.select(Refund).where(Refund.order_id == filled.orders[name])
        ).one()
        assert refund.amount_cents == 800
    assert _order(db_session, filled.orders["leader"]).status == "confirmed"

    # The ring's next order starts with the rejection on its record: refused.
    ring_member = db_session.get(User, filled.users["a"])
    assert ring_member is not None
    later = client.post(
        "/api/v1/orders",
        json={"sku_id": _order(db_session, filled.orders["a"]).sku_id, "qty": 1},
        headers=headers(settings, ring_member, "android-ring-0001"),
    )
    assert later.status_code == 403 and later.json()["code"] == "RISK_BLOCKED"
    (refused,) = reviews(db_session, subject_type="user", subject_id=filled.users["a"])
    assert hit(refused, "rejected_before")["rejected"] == 1
