"""A shopper exports their data and erases their account: personal fields go, orders stay,
tokens die, the phone may sign up again; in-flight orders refuse it; nobody else's data."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.factories import auth_header, make_order, make_product, make_sku, make_user
from tests.platform.privacy.people import bearer, erasure_headers, sign_in
from tuanbox.accounts.models import Address, OtpCode, User
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Sku
from tuanbox.crypto import PiiCipher
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.notifications.models import Notification
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.orders.services import transition
from tuanbox.payments.services import handle_event, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.returns.models import ReturnRequest
from tuanbox.settings import Settings

OPS = Actor("ops-1", "ops")
PHONE_A, PHONE_B = "+86 138 1111 2222", "+86 138 3333 4444"
E164_A = "+8613811112222"


def _paid(session: Session, settings: Settings, user: User, *, to: str = "paid") -> Order:
    sku = make_sku(session, make_product(session), price_cents=1800, stock=5)
    order = make_order(session, user=user, sku=sku)
    sim = SimPay(settings)
    intent = start_checkout(session, order, sim)
    body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
    handle_event(session, sim.verify_webhook(headers, body))
    path = ["confirmed", "allocated", "ready_for_pickup", "picked_up", "completed"]
    for status in path[: path.index(to) + 1] if to != "paid" else []:
        transition(session, order, status, actor=OPS, reason="fulfilment")
    session.flush()
    return order


def _review(session: Session, order: Order, text: str) -> str | None:
    """A review of the order, where the reviews feature's table exists (its id, else None)."""
    if "reviews" not in sa.inspect(session.connection()).get_table_names():
        return None
    product_id = session.scalar(sa.select(Sku.product_id).where(Sku.id == order.sku_id))
    review_id = f"rv-{order.id[:30]}"
    session.execute(
        sa.text(
            "INSERT INTO reviews (id, order_id, user_id, product_id, merchant_id, rating, text)"
            " VALUES (:id, :o, :u, :p, :m, 4, :t)"
        ),
        {
            "id": review_id,
            "o": order.id,
            "u": order.user_id,
            "p": product_id,
            "m": order.merchant_id,
            "t": text,
        },
    )
    return review_id


def _shopper(
    client: TestClient, session: Session, settings: Settings, phone: str, name: str
) -> tuple[dict[str, Any], User]:
    tokens = sign_in(client, session, settings, phone)
    h = bearer(tokens)
    assert client.patch("/api/v1/me", json={"display_name": name}, headers=h).status_code == 200
    for n, text in enumerate((f"{name}'s home", f"{name}'s office")):
        r = client.post(
            "/api/v1/me/addresses", json={"text": text}, headers={**h, "Idempotency-Key": f"a{n}"}
        )
        assert r.status_code == 201
    user = session.get(User, tokens["user"]["id"])
    assert user is not None
    return tokens, user


def test_name_is_stored_encrypted_and_bounded(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens, user = _shopper(client, db_session, settings, PHONE_A, "小李")
    h = bearer(tokens)
    raw = db_session.execute(
        sa.text("SELECT display_name, display_name_enc FROM users WHERE id = :id"), {"id": user.id}
    ).one()
    assert raw.display_name is None and raw.display_name_enc.startswith("k1:")
    assert "小李" not in raw.display_name_enc
    assert client.get("/api/v1/me", headers=h).json()["display_name"] == "小李"
    too_long = client.patch("/api/v1/me", json={"display_name": "x" * 101}, headers=h)
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "display_name"
    nul = client.patch("/api/v1/me", json={"display_name": "a\u0000b"}, headers=h)
    assert nul.status_code == 422
    assert (
        client.patch("/api/v1/me", json={"display_name": ""}, headers=h).json()["display_name"]
        is None
    )
    # A stored reply holds an address, so it is kept encrypted.
    replies = db_session.scalars(
        sa.select(IdempotencyKey).where(IdempotencyKey.principal == user.id)
    ).all()
    assert len(replies) == 2
    assert all(r.response_body is None and r.response_enc.startswith("k1:") for r in replies)  # type: ignore[union-attr]


def test_export_holds_the_shoppers_data_and_nobody_elses(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens_a, alice = _shopper(client, db_session, settings, PHONE_A, "Alice Wu")
    tokens_b, bob = _shopper(client, db_session, settings, PHONE_B, "Bob Ma")
    order = _paid(db_session, settings, alice, to="picked_up")
    ret = client.post(
        f"/api/v1/orders/{order.id}/return",
        json={"method": "courier", "reason": "too ripe"},
        headers=bearer(tokens_a),
    )
    assert ret.status_code == 201
    _paid(db_session, settings, bob)
    review = _review(db_session, order, "sweet, but two were bruised")

    response = client.get("/api/v1/me/export", headers=bearer(tokens_a))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "attachment" in response.headers["content-disposition"]
    doc = response.json()
    assert doc["format"] == "tuanbox.export/1"
    assert doc["account"] == {
        "id": alice.id,
        "role": "shopper",
        "phone": E164_A,
        "display_name": "Alice Wu",
        "created_at": doc["account"]["created_at"],
    }
    assert sorted(a["text"] for a in doc["addresses"]) == ["Alice Wu's home", "Alice Wu's office"]
    [exported] = doc["orders"]
    assert exported["id"] == order.id and exported["status"] == "return_requested"
    assert [h["to"] for h in exported["history"]][-2:] == ["picked_up", "return_requested"]
    assert exported["product"].startswith("Peaches") and exported["paid_cents"] == 1800
    assert [(r["order_id"], r["reason"]) for r in doc["returns"]] == [(order.id, "too ripe")]
    assert "order_paid" in {n["template"] for n in doc["notifications"]}
    if review is None:
        assert doc["reviews"] == []
    else:
        [mine] = doc["reviews"]
        assert (mine["id"], mine["rating"], mine["text"]) == (
            review,
            4,
            "sweet, but two were bruised",
        )
    # Bob's copy is Bob's: nothing of Alice in it.
    bobs = client.get("/api/v1/me/export", headers=bearer(tokens_b)).text
    assert alice.id not in bobs and E164_A not in bobs and "Alice" not in bobs
    assert order.id not in bobs and bob.id in bobs
    assert client.get("/api/v1/me/export").status_code == 401


def test_export_is_rate_limited_per_account(
    app: FastAPI, client: TestClient, db_session: Session, settings: Settings
) -> None:
    app.state.settings = settings.model_copy(update={"export_per_user_per_hour": 2})
    h = auth_header(settings, make_user(db_session))
    assert [client.get("/api/v1/me/export", headers=h).status_code for _ in range(2)] == [200, 200]
    third = client.get("/api/v1/me/export", headers=h)
    assert third.status_code == 429 and int(third.headers["retry-after"]) > 0
    other = auth_header(settings, make_user(db_session))
    assert client.get("/api/v1/me/export", headers=other).status_code == 200


def test_erase_removes_personal_fields_keeps_orders_and_frees_the_phone(
    app: FastAPI, client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens, alice = _shopper(client, db_session, settings, PHONE_A, "Alice Wu")
    user_id = alice.id
    done_order = _paid(db_session, settings, alice, to="picked_up")
    ret = client.post(
        f"/api/v1/orders/{done_order.id}/return",
        json={"method": "courier", "reason": "call me on 13811112222 first"},
        headers=bearer(tokens),
    ).json()
    assert client.post(f"/api/v1/returns/{ret['id']}/withdraw", headers=bearer(tokens)).is_success
    review = _review(db_session, done_order, "Alice here, ask for me at flat 3")
    unpaid = make_order(db_session, user=alice)
    cancel = client.post(
        f"/api/v1/orders/{make_order(db_session, user=alice).id}/cancel",
        json={"reason": "wrong flat, I live at 12 Elm St"},
        headers=bearer(tokens),
    )
    assert cancel.status_code == 200
    bob_tokens, bob = _shopper(client, db_session, settings, PHONE_B, "Bob Ma")
    tables = set(sa.inspect(db_session.connection()).get_table_names())
    signals = "SELECT count(*) FROM risk_signals WHERE user_id = :u"
    if "risk_signals" in tables:  # the risk feature keys its signals by account id
        assert db_session.scalar(sa.text(signals), {"u": user_id})

    erased = client.delete(
        "/api/v1/me", headers=erasure_headers(client, db_session, settings, tokens, PHONE_A)
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["orders_kept"] == 3 and erased.json()["orders_cancelled"] == [unpaid.id]

    db_session.expire_all()
    row = db_session.get(User, user_id)
    assert row is not None and row.erased_at is not None and not row.active
    assert (row.phone_enc, row.phone_hash, row.display_name, row.display_name_enc) == (None,) * 4

    def count(model: Any, *where: Any) -> int:
        return int(
            db_session.scalar(sa.select(sa.func.count()).select_from(model).where(*where)) or 0
        )

    cipher = PiiCipher(settings)
    assert count(Address, Address.user_id == user_id) == 0
    assert count(Notification, Notification.user_id == user_id) == 0
    assert count(Notification, Notification.recipient_hash == cipher.blind_index(E164_A)) == 0
    assert count(OtpCode, OtpCode.phone_hash == cipher.blind_index(E164_A)) == 0
    assert count(IdempotencyKey, IdempotencyKey.principal == user_id) == 0
    if "risk_signals" in tables:
        assert db_session.scalar(sa.text(signals), {"u": user_id}) == 0
    # The books keep every order, under the account id; the free text the shopper wrote goes.
    assert count(Order, Order.user_id == user_id) == 3
    assert db_session.get(Order, unpaid.id).status == "cancelled"  # type: ignore[union-attr]
    assert db_session.get(ReturnRequest, ret["id"]).reason == "[erased]"  # type: ignore[union-attr]
    if review is not None:  # the text goes, the rating stays (the product's average)
        kept = db_session.execute(
            sa.text("SELECT rating, text FROM reviews WHERE id = :id"), {"id": review}
        ).one()
        assert (kept.rating, kept.text) == (4, "")
    own_reasons = db_session.scalars(
        sa.select(OrderTransition.reason).where(OrderTransition.actor_id == user_id)
    ).all()
    assert own_reasons and set(own_reasons) == {"[erased]"}
    entry = db_session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "user.erase")).one()
    assert (entry.actor_id, entry.subject_id, entry.details["addresses"]) == (user_id, user_id, 2)
    assert "Alice" not in str(entry.details) and "13811112222" not in str(entry.details)

    # Every token is dead; the other shopper is untouched.
    me = client.get("/api/v1/me", headers=bearer(tokens))
    assert me.status_code == 401 and me.json()["code"] == "TOKEN_REVOKED"
    refresh = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refresh.status_code == 401
    assert client.get("/api/v1/me", headers=bearer(bob_tokens)).json()["display_name"] == "Bob Ma"
    assert count(Address, Address.user_id == bob.id) == 2

    # The phone signs up again: a new, empty account.
    again = sign_in(client, db_session, settings, PHONE_A)
    assert again["user"]["id"] != user_id
    fresh = client.get("/api/v1/me/export", headers=bearer(again)).json()
    assert fresh["account"]["phone"] == E164_A and fresh["orders"] == []
    # An admin cannot bring the erased account back.
    admin = auth_header(settings, make_user(db_session, "admin"))
    back = client.post(
        f"/api/v1/users/{user_id}/enable", json={"reason": "asked by phone"}, headers=admin
    )
    assert back.status_code == 409 and back.json()["code"] == "ACCOUNT_ERASED"


def test_erase_is_refused_while_an_order_is_in_flight(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens, alice = _shopper(client, db_session, settings, PHONE_A, "Alice Wu")
    paid = _paid(db_session, settings, alice)
    at_locker = _paid(db_session, settings, alice, to="ready_for_pickup")
    _paid(db_session, settings, alice, to="completed")
    h = erasure_headers(client, db_session, settings, tokens, PHONE_A)
    refused = client.delete("/api/v1/me", headers=h)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "ORDERS_IN_FLIGHT"
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert sorted((o["id"], o["status"]) for o in problem["orders"]) == sorted(
        [(paid.id, "paid"), (at_locker.id, "ready_for_pickup")]
    )
    db_session.expire_all()
    row = db_session.get(User, alice.id)
    assert row is not None and row.erased_at is None and row.phone_enc is not None
    assert client.get("/api/v1/me", headers=bearer(tokens)).json()["phone"] == E164_A


def test_nobody_erases_someone_else(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens_a, alice = _shopper(client, db_session, settings, PHONE_A, "Alice Wu")
    tokens_b, _ = _shopper(client, db_session, settings, PHONE_B, "Bob Ma")
    # Alice's erasure code with Bob's token erases nothing (it is not Bob's phone's code).
    alice_code = erasure_headers(client, db_session, settings, tokens_a, PHONE_A)["X-Erasure-Code"]
    bob = erasure_headers(client, db_session, settings, tokens_b, PHONE_B)
    mixed = client.delete("/api/v1/me", headers={**bob, "X-Erasure-Code": alice_code})
    assert mixed.status_code == 422 or alice_code == bob["X-Erasure-Code"], mixed.text
    # There is no account id to aim at: a query or body naming Alice is ignored.
    bob = erasure_headers(client, db_session, settings, tokens_b, PHONE_B)
    r = client.request(
        "DELETE", f"/api/v1/me?user_id={alice.id}", json={"id": alice.id}, headers=bob
    )
    assert r.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(tokens_a)).json()["phone"] == E164_A
    # Staff accounts are closed by an admin, not erased; no token, no erasure.
    staff = auth_header(
        settings, make_user(db_session, "merchant_staff", make_product(db_session).merchant_id)
    )
    assert client.delete("/api/v1/me", headers=staff).status_code == 403
    assert client.post("/api/v1/me/erasure-code", headers=staff).status_code == 403
    assert client.delete("/api/v1/me").status_code == 401
    assert client.post("/api/v1/me/erasure-code").status_code == 401
    forged = tokens_a["access_token"][:-4] + "AAAA"
    assert (
        client.delete("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code
        == 401
    )
    db_session.expire_all()
    assert db_session.get(User, alice.id).erased_at is None  # type: ignore[union-attr]
