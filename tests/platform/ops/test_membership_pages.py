"""Ops' membership pages over HTTP: a member found by phone (blind index), the refund shown
then confirmed against that amount (audited, once); member prices listed, set and cleared
(audited); bad input worded on the page or refused as a problem; other roles refused."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.factories import (
    auth_header,
    make_merchant,
    make_product,
    make_sku,
    make_user,
)
from tuanbox.accounts.models import User
from tuanbox.audit.models import AuditEntry
from tuanbox.membership import services as membership
from tuanbox.membership.models import MemberPrice, MembershipTerm
from tuanbox.payments.services import handle_event
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings


def _phone() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def _member(session: Session, settings: Settings, phone: str) -> User:
    shopper = make_user(session, phone=phone, settings=settings)
    sim = SimPay(settings)
    term, _url = membership.start_purchase(session, settings, shopper.id, sim)
    body, headers = sim.payment_webhook(sim.charge(session, term.id, term.amount_cents))
    assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"
    return shopper


def _audits(session: Session, action: str, subject: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.subject_id == subject)
        )
    )


def test_ops_find_a_member_by_phone_see_the_refund_and_confirm_it_once(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    phone = _phone()
    shopper = _member(db_session, settings, phone)
    ops = auth_header(settings, make_user(db_session, "ops"))
    local = phone.removeprefix("+86")  # typed without the country code
    page = client.get("/ops/membership", params={"phone": local}, headers=ops)
    assert page.status_code == 200, page.text
    expected = settings.membership_price_cents * 364 // 365  # the day bought counts as used
    shown = f"¥{expected // 100}.{expected % 100:02d}"
    assert f'data-user-id="{shopper.id}"' in page.text and "member until" in page.text
    assert f'data-cents="{expected}"' in page.text and shown in page.text

    url = f"/ops/users/{shopper.id}/membership/refund"
    stale = client.post(url, json={"expected_cents": expected + 1}, headers=ops)
    assert stale.status_code == 409 and shown in stale.json()["detail"]
    assert _audits(db_session, "membership.refund", shopper.id) == []
    cross = client.post(
        url, json={"expected_cents": expected}, headers={**ops, "Origin": "https://x.example"}
    )
    assert cross.status_code == 403
    done = client.post(url, json={"expected_cents": expected}, headers=ops)
    assert done.status_code == 200, done.text
    assert done.json()["cents"] == expected
    again = client.post(url, json={"expected_cents": 0}, headers=ops)
    assert again.status_code == 409 and again.json()["code"] == "NOT_A_MEMBER"
    [entry] = _audits(db_session, "membership.refund", shopper.id)
    assert entry.after == {"cents": expected, "days": 364}
    term = db_session.scalars(
        select(MembershipTerm).where(MembershipTerm.user_id == shopper.id)
    ).one()
    db_session.refresh(term)
    assert term.status == "refunded" and term.refunded_cents == expected
    after = client.get("/ops/membership", params={"phone": phone}, headers=ops)
    assert "not a member" in after.text and "No paid days left to refund." in after.text


def test_membership_lookup_words_bad_phones_and_unknown_accounts(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ops = auth_header(settings, make_user(db_session, "ops"))
    empty = client.get("/ops/membership", headers=ops)
    assert empty.status_code == 200 and 'name="phone"' in empty.text
    for bad in ("12ab", "1" * 150):
        page = client.get("/ops/membership", params={"phone": bad}, headers=ops)
        assert page.status_code == 422, bad
        assert "That is not a phone number" in page.text
    nul = client.get("/ops/membership", params={"phone": "1\x003800138000"}, headers=ops)
    assert nul.status_code == 422 and nul.json()["code"] == "INVALID_INPUT"  # app-wide guard
    too_long = client.get("/ops/membership", params={"phone": "1" * 300}, headers=ops)
    assert too_long.status_code == 422  # beyond the query's own bound: a problem document
    unknown = client.get("/ops/membership", params={"phone": _phone()}, headers=ops)
    assert unknown.status_code == 404 and "No account has this phone number." in unknown.text
    for body in ({"expected_cents": 2**31 * 10**9}, {"expected_cents": -1}, {}):
        refused = client.post(
            f"/ops/users/{uuid.uuid4()}/membership/refund", json=body, headers=ops
        )
        assert refused.status_code == 422, body
    long_id = client.post(
        f"/ops/users/{'x' * 200}/membership/refund", json={"expected_cents": 0}, headers=ops
    )
    assert long_id.status_code == 422
    missing = client.post(
        f"/ops/users/{uuid.uuid4()}/membership/refund", json={"expected_cents": 0}, headers=ops
    )
    assert missing.status_code == 404


def test_ops_list_set_and_clear_member_prices_audited(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session, name=f"Orchard {uuid.uuid4().hex[:6]}")
    product = make_product(db_session, merchant)
    sku = make_sku(db_session, product, price_cents=2000)
    ops = auth_header(settings, make_user(db_session, "ops"))
    listed = client.get("/ops/member-prices", params={"q": product.name}, headers=ops)
    assert listed.status_code == 200
    assert f'data-sku-id="{sku.id}"' in listed.text and "no member price" in listed.text

    url = f"/ops/skus/{sku.id}/member-price"
    saved = client.post(url, json={"price": "18.5"}, headers=ops)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"sku_id": sku.id, "price_cents": 1850}
    assert db_session.get(MemberPrice, sku.id).price_cents == 1850  # type: ignore[union-attr]
    [entry] = _audits(db_session, "membership.member_price", sku.id)
    assert entry.after == {"price_cents": 1850}
    shown = client.get("/ops/member-prices", params={"q": product.name}, headers=ops)
    assert "member ¥18.50" in shown.text and 'value="18.50"' in shown.text

    for bad, words in (
        ("", "please enter an amount"),
        ("abc", "enter an amount in yuan"),
        ("0", "at least ¥0.01"),
        (str(2**31), "enter an amount in yuan"),
        ("99999999.99", "at most"),
        ("1\x008", "must not contain NUL"),
    ):
        refused = client.post(url, json={"price": bad}, headers=ops)
        assert refused.status_code == 422, bad
        assert words in refused.json()["detail"], (bad, refused.json())
    assert client.post(url, json={"price": "1" * 50}, headers=ops).status_code == 422
    assert client.post(url, json={"price_cents": 1}, headers=ops).status_code == 422
    long_id = client.post(f"/ops/skus/{'x' * 200}/member-price", json={"price": "1"}, headers=ops)
    assert long_id.status_code == 422
    elsewhere = f"/ops/skus/{uuid.uuid4()}/member-price"
    nowhere = client.post(elsewhere, json={"price": "1"}, headers=ops)
    assert nowhere.status_code == 404
    assert db_session.get(MemberPrice, sku.id).price_cents == 1850  # type: ignore[union-attr]

    cleared = client.post(f"{url}/clear", json={}, headers=ops)
    assert cleared.status_code == 204, cleared.text
    db_session.expire_all()
    assert db_session.get(MemberPrice, sku.id) is None
    [entry] = _audits(db_session, "membership.member_price.clear", sku.id)
    assert entry.before == {"price_cents": 1850}
    twice = client.post(f"{url}/clear", json={}, headers=ops)
    assert twice.status_code == 204  # nothing to clear: the same answer, audited as such
    befores = [e.before for e in _audits(db_session, "membership.member_price.clear", sku.id)]
    assert sorted(befores, key=str) == [{"price_cents": 1850}, {"price_cents": None}]
    gone = client.post(f"/ops/skus/{uuid.uuid4()}/member-price/clear", json={}, headers=ops)
    assert gone.status_code == 404
    bad_q = client.get("/ops/member-prices", params={"q": "x" * 150}, headers=ops)
    assert bad_q.status_code == 422 and "at most 100 characters" in bad_q.text
    wild = client.get("/ops/member-prices", params={"q": "%_\\"}, headers=ops)
    assert wild.status_code == 200 and f'data-sku-id="{sku.id}"' not in wild.text


def test_the_api_clears_a_member_price_for_ops_only(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    sku = make_sku(db_session, make_product(db_session, merchant))
    ops = auth_header(settings, make_user(db_session, "ops"))
    # Member prices are ops' (the API's rule): not even the SKU's own merchant clears one.
    staff = auth_header(settings, make_user(db_session, "merchant_staff", merchant.id))
    url = f"/api/v1/skus/{sku.id}/member-price"
    assert client.put(url, json={"price_cents": 900}, headers=ops).status_code == 200
    assert client.delete(url, headers=staff).status_code == 403
    assert client.delete(url, headers=ops).status_code == 204
    assert client.delete(url, headers=ops).status_code == 204  # already cleared
    gone = client.delete(f"/api/v1/skus/{uuid.uuid4()}/member-price", headers=ops)
    assert gone.status_code == 404


def test_other_roles_are_refused_every_membership_page_and_action(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shopper = _member(db_session, settings, _phone())
    merchant = make_merchant(db_session)
    sku = make_sku(db_session, make_product(db_session, merchant))
    for role in ("shopper", "merchant_staff"):
        merchant_id = merchant.id if role == "merchant_staff" else None
        who = auth_header(settings, make_user(db_session, role, merchant_id))
        for page in ("/ops/membership", "/ops/member-prices"):
            refused = client.get(page, headers=who, follow_redirects=False)
            assert refused.status_code == 303 and refused.headers["location"] == "/ops/login"
        for url, body in (
            (f"/ops/users/{shopper.id}/membership/refund", {"expected_cents": 0}),
            (f"/ops/skus/{sku.id}/member-price", {"price": "1"}),
            (f"/ops/skus/{sku.id}/member-price/clear", {}),
        ):
            assert client.post(url, json=body, headers=who).status_code == 403, (role, url)
    anonymous = client.post(f"/ops/skus/{sku.id}/member-price", json={"price": "1"})
    assert anonymous.status_code == 401
    assert client.get("/ops/membership", follow_redirects=False).status_code == 303
    assert db_session.get(MemberPrice, sku.id) is None
    assert _audits(db_session, "membership.refund", shopper.id) == []
