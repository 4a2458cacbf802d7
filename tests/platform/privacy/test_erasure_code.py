"""Erasing an account needs a fresh code texted to its phone, not only an access token: a
stolen token cannot destroy the account. Codes are purpose-bound (a sign-in code does not
erase, an erasure code does not sign in), die when wrong too often, expire, and are spent
once; asking for them shares the sign-in codes' limits."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.platform.privacy.people import bearer, erasure_headers, last_code, sign_in
from tuanbox.accounts.models import OtpCode, User
from tuanbox.db.base import utcnow
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
