"""Erasing an account needs a fresh code texted to its phone, not only an access token: a
stolen token cannot destroy the account. Codes are purpose-bound (a sign-in code does not
erase, an erasure code does not sign in), die when wrong too often, expire, and are spent
once; asking for them shares the sign-in codes' limits."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.notifications.fake_sms_gateway import TEMPLATES, FakeSmsGateway
from tests.platform.notifications.test_sms_gateway import gateway_settings
from tests.platform.privacy.people import bearer, erasure_headers, last_code, sign_in
from tuanbox.accounts import services as accounts
from tuanbox.accounts.models import OtpCode, User
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import secrets_of
from tuanbox.notifications.services import get_sms_sender
from tuanbox.notifications.wording import render
from tuanbox.settings import Settings

PHONE = "+86 137 5555 6666"
PROBLEM = "application/problem+json"


def _intact(session: Session, user_id: str) -> bool:
    session.expire_all()
    row = session.get(User, user_id)
    return row is not None and row.erased_at is None and row.phone_enc is not None


def test_an_access_token_alone_does_not_erase(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = sign_in(client, db_session, settings, PHONE)
    r = client.delete("/api/v1/me", headers=bearer(tokens))
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), r.text
    assert _intact(db_session, tokens["user"]["id"])
    # A code that was never asked for is no better.
    r = client.delete("/api/v1/me", headers={**bearer(tokens), "X-Erasure-Code": "123456"})
    assert r.status_code == 422 and r.json()["code"] == "ERASURE_CODE_INVALID", r.text
    assert _intact(db_session, tokens["user"]["id"])


def test_a_sign_in_code_does_not_erase_and_an_erasure_code_does_not_sign_in(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = sign_in(client, db_session, settings, PHONE)
    assert client.post("/api/v1/auth/otp", json={"phone": PHONE}).status_code == 202
    signin_code = last_code(db_session, settings, PHONE)
    r = client.delete("/api/v1/me", headers={**bearer(tokens), "X-Erasure-Code": signin_code})
    assert r.status_code == 422 and r.json()["code"] == "ERASURE_CODE_INVALID", r.text
    assert _intact(db_session, tokens["user"]["id"])

    erasure_code = erasure_headers(client, db_session, settings, tokens, PHONE)["X-Erasure-Code"]
    grant = {"grant_type": "otp", "phone": PHONE, "code": erasure_code}
    r = client.post("/api/v1/auth/token", json=grant)
    assert r.status_code == 401 and r.json()["code"] == "OTP_INVALID", r.text


def test_the_right_code_erases_once(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = sign_in(client, db_session, settings, PHONE)
    h = erasure_headers(client, db_session, settings, tokens, PHONE)
    r = client.delete("/api/v1/me", headers=h)
    assert r.status_code == 200, r.text
    assert not _intact(db_session, tokens["user"]["id"])
    # Spent (and the token revoked with the account): the same request again does nothing.
    assert client.delete("/api/v1/me", headers=h).status_code == 401


def test_an_older_or_expired_erasure_code_is_refused(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = sign_in(client, db_session, settings, PHONE)
    older = erasure_headers(client, db_session, settings, tokens, PHONE)
    newer = erasure_headers(client, db_session, settings, tokens, PHONE)
    if older["X-Erasure-Code"] != newer["X-Erasure-Code"]:
        r = client.delete("/api/v1/me", headers=older)
        assert r.status_code == 422 and r.json()["code"] == "ERASURE_CODE_INVALID", r.text
    # The newer one, once expired.
    db_session.execute(
        sa.update(OtpCode)
        .where(OtpCode.consumed_at.is_(None))
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db_session.commit()
    r = client.delete("/api/v1/me", headers=newer)
    assert r.status_code == 422 and r.json()["code"] == "ERASURE_CODE_INVALID", r.text
    assert _intact(db_session, tokens["user"]["id"])


def test_wrong_codes_kill_the_code(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = sign_in(client, db_session, settings, PHONE)
    h = erasure_headers(client, db_session, settings, tokens, PHONE)
    wrong = f"{(int(h['X-Erasure-Code']) + 1) % 10**6:06d}"
    for left in range(settings.otp_max_attempts - 1, -1, -1):
        r = client.delete("/api/v1/me", headers={**h, "X-Erasure-Code": wrong})
        assert r.status_code == 422 and r.json()["attempts_left"] == left, r.text
    # Now even the right code is refused until a new one is asked for.
    r = client.delete("/api/v1/me", headers=h)
    assert r.status_code == 429 and r.json()["code"] == "OTP_LOCKED", r.text
    assert "retry-after" in r.headers
    assert _intact(db_session, tokens["user"]["id"])
    fresh = erasure_headers(client, db_session, settings, tokens, PHONE)
    assert client.delete("/api/v1/me", headers=fresh).status_code == 200


def test_asking_for_erasure_codes_shares_the_sign_in_limit_per_phone(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = sign_in(client, db_session, settings, PHONE)  # one code of the hour's quota
    statuses = [
        client.post("/api/v1/me/erasure-code", headers=bearer(tokens)).status_code
        for _ in range(settings.otp_per_phone_per_hour)
    ]
    assert statuses == [202] * (settings.otp_per_phone_per_hour - 1) + [429], statuses
    # And the sign-in endpoint sees the same quota spent.
    assert client.post("/api/v1/auth/otp", json={"phone": PHONE}).status_code == 429


def test_the_erasure_code_is_texted_as_an_erasure_code_not_a_sign_in_code(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = sign_in(client, db_session, settings, PHONE)
    code = erasure_headers(client, db_session, settings, tokens, PHONE)["X-Erasure-Code"]
    note = db_session.scalars(
        sa.select(Notification)
        .where(Notification.channel == "sms")
        .order_by(Notification.id.desc())
    ).first()
    assert note is not None and note.template == "erasure_code"
    text = render(note.template, {**note.payload, **secrets_of(PiiCipher(settings), note)})
    assert text is not None and code in text
    assert "erasure code" in text and "erases your account" in text and "sign-in" not in text
    zh = render(note.template, {"code": code}, lang="zh")
    assert zh is not None and "注销" in zh and "登录" not in zh


def test_through_the_gateway_the_erasure_code_has_its_own_template(
    db_session: Session, settings: Settings
) -> None:
    with FakeSmsGateway() as fake:
        gateway = gateway_settings(fake.url, rate_limit_prefix=settings.rate_limit_prefix)
        sms = get_sms_sender(gateway)
        accounts.request_otp(db_session, gateway, PHONE, sms=sms, purpose="erasure")
        accounts.request_otp(db_session, gateway, PHONE, sms=sms)
    assert [r.template_code for r in fake.received] == [
        TEMPLATES["erasure_code"], TEMPLATES["otp"]]  # fmt: skip
    assert TEMPLATES["erasure_code"] != TEMPLATES["otp"]
