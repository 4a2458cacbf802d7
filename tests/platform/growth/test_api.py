"""The growth and membership API: problem bodies with codes for refusals and bad input, a
referral bound once, task progress, the leaderboard masked, a new-user offer claimed once,
a membership bought through SimPay's webhook and refunded pro rata by ops (audited)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.coupons.support import template
from tests.platform.factories import auth_header, make_user
from tests.platform.growth.support import invitee_with_order, new_sku
from tuanbox.audit.models import AuditEntry
from tuanbox.db.base import utcnow
from tuanbox.payments.services import handle_event
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

PROBLEM = "application/problem+json"


def test_referral_binding_and_its_refusals(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    a, b = make_user(db_session), make_user(db_session)
    as_b = auth_header(settings, b)
    bound = client.post(
        "/api/v1/me/referral", json={"inviter_id": a.id, "campaign_id": "c1"}, headers=as_b
    )
    assert bound.status_code == 200, bound.text
    assert bound.json() == {"inviter_id": a.id, "created": True, "campaign_id": "c1"}
    loop = client.post(
        "/api/v1/me/referral", json={"inviter_id": b.id}, headers=auth_header(settings, a)
    )
    assert loop.status_code == 409 and loop.headers["content-type"].startswith(PROBLEM)
    assert (loop.json()["code"], loop.json()["reason"]) == ("REFERRAL_REFUSED", "LOOP")
    own = client.post("/api/v1/me/referral", json={"inviter_id": b.id}, headers=as_b)
    assert own.json()["reason"] == "SELF"
    bad = client.post("/api/v1/me/referral", json={"inviter_id": "", "source": "x"}, headers=as_b)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    mine = client.get("/api/v1/me/invites", headers=auth_header(settings, a)).json()
    assert mine["invitees"] == 1 and mine["inviter_id"] is None


def test_tasks_and_leaderboard(client: TestClient, db_session: Session, settings: Settings) -> None:
    ops = make_user(db_session, "ops")
    ten = template(db_session, amount_off_cents=1000)
    made = client.post(
        "/api/v1/invite-tasks",
        json={
            "name": "invite 1",
            "goal": 1,
            "template_id": ten.id,
            "starts_at": (utcnow() - timedelta(days=1)).isoformat(),
            "ends_at": (utcnow() + timedelta(days=1)).isoformat(),
        },
        headers=auth_header(settings, ops),
    )
    assert made.status_code == 201, made.text
    audit = db_session.scalars(
        select(AuditEntry).where(AuditEntry.subject_id == made.json()["id"])
    ).all()
    assert [e.action for e in audit] == ["growth.task.create"]
    inviter = make_user(db_session)
    invitee_with_order(db_session, settings, inviter, new_sku(db_session))
    # Bound but not counted: the first order not picked up yet.
    invitee_with_order(db_session, settings, inviter, new_sku(db_session), picked_up=False)
    mine = client.get("/api/v1/me/invites", headers=auth_header(settings, inviter)).json()
    assert (mine["invitees"], mine["counted"]) == (2, 1)
    task = next(t for t in mine["tasks"] if t["task_id"] == made.json()["id"])
    assert (task["count"], task["reward"]) == (1, "granted")
    board = client.get("/api/v1/leaderboards/week", headers=auth_header(settings, inviter)).json()
    me = [p for p in board["places"] if p["me"]]
    assert me and me[0]["invites"] == 1 and me[0]["name"].endswith("**")
    assert (
        client.get("/api/v1/leaderboards/year", headers=auth_header(settings, inviter)).status_code
        == 422
    )


def test_new_user_offer_claimed_once(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ops = make_user(db_session, "ops")
    made = client.post(
        "/api/v1/new-user-offers",
        json={"sku_id": new_sku(db_session).id, "name": "新人专享 ¥1 购", "price_cents": 100},
        headers=auth_header(settings, ops),
    )
    assert made.status_code == 201, made.text
    shopper = make_user(db_session, phone="13700000001", settings=settings)
    url = f"/api/v1/new-user-offers/{made.json()['id']}/claims"
    first = client.post(url, json={"device_id": "d-1"}, headers=auth_header(settings, shopper))
    assert first.status_code == 201 and first.json()["price_cents"] == 100
    twin = make_user(db_session, phone="13700000002", settings=settings)
    again = client.post(url, json={"device_id": "d-1"}, headers=auth_header(settings, twin))
    assert again.status_code == 409
    assert (again.json()["code"], again.json()["reason"]) == ("OFFER_ALREADY_CLAIMED", "DEVICE")


def test_membership_bought_through_simpay_and_refunded_by_ops(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper, ops = make_user(db_session), make_user(db_session, "ops")
    as_shopper = auth_header(settings, shopper)
    assert client.get("/api/v1/me/membership", headers=as_shopper).json()["member"] is False
    bought = client.post(
        "/api/v1/me/membership/purchases", json={"provider": "sim"}, headers=as_shopper
    )
    assert bought.status_code == 201, bought.text
    assert bought.json()["amount_cents"] == settings.membership_price_cents
    sim = SimPay(settings)
    body, headers = sim.payment_webhook(sim.charge(db_session, bought.json()["term_id"], 9900))
    assert (
        client.post("/api/v1/payments/sim/webhook", content=body, headers=headers).status_code
        == 200
    )
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "duplicate"
    status = client.get("/api/v1/me/membership", headers=as_shopper).json()
    assert status["member"] is True and status["terms"][0]["status"] == "paid"
    refunded = client.post(
        f"/api/v1/users/{shopper.id}/membership/refund", headers=auth_header(settings, ops)
    )
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["cents"] == 9900 * 364 // 365  # the day it was bought counts as used
    again = client.post(
        f"/api/v1/users/{shopper.id}/membership/refund", headers=auth_header(settings, ops)
    )
    assert again.status_code == 409 and again.json()["code"] == "NOT_A_MEMBER"
    assert client.get("/api/v1/me/membership", headers=as_shopper).json()["member"] is False


def test_a_member_orders_at_the_member_price(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    from tuanbox.membership import services as membership

    member, other, ops = make_user(db_session), make_user(db_session), make_user(db_session, "ops")
    sku = new_sku(db_session)  # ¥20.00
    put = client.put(
        f"/api/v1/skus/{sku.id}/member-price",
        json={"price_cents": 1800},
        headers=auth_header(settings, ops),
    )
    assert put.status_code == 200, put.text
    sim = SimPay(settings)
    term, _url = membership.start_purchase(db_session, settings, member.id, sim)
    body, headers = sim.payment_webhook(sim.charge(db_session, term.id, term.amount_cents))
    assert handle_event(db_session, sim.verify_webhook(headers, body)) == "applied"
    totals = {}
    for who in (member, other):
        made = client.post(
            "/api/v1/orders",
            json={"sku_id": sku.id, "qty": 2},
            headers={**auth_header(settings, who), "Idempotency-Key": f"k-{who.id}"},
        )
        assert made.status_code == 201, made.text
        totals[who.id] = made.json()["total_cents"]
    assert totals == {member.id: 3600, other.id: 4000}
