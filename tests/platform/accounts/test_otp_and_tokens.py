"""Phone OTP sign-in, staff passwords, token rotation and reuse, PII never in plaintext."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import STAFF_PASSWORD, auth_header, make_merchant, make_user
from tuanbox.accounts.deps import Principal
from tuanbox.accounts.models import OtpCode
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import secrets_of
from tuanbox.settings import Settings

PHONE = "+86 138 0013 8000"


def _last_code(session: Session, settings: Settings, phone: str) -> str:
    phone_hash = PiiCipher(settings).blind_index(phone.replace(" ", ""))
    note = session.scalars(
        sa.select(Notification)
        .where(Notification.recipient_hash == phone_hash, Notification.template == "otp")
        .order_by(Notification.id.desc())
    ).first()
    assert note is not None and "code" not in note.payload
    # Test settings use the development inbox: the code is kept only encrypted, for a person.
    return str(secrets_of(PiiCipher(settings), note)["code"])


def _otp_login(client: TestClient, session: Session, settings: Settings, phone: str) -> dict:
    assert client.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
    code = _last_code(session, settings, phone)
    response = client.post(
        "/api/v1/auth/token", json={"grant_type": "otp", "phone": phone, "code": code}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_otp_sign_in_creates_shopper_and_phone_is_only_stored_encrypted(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = _otp_login(client, db_session, settings, PHONE)
    assert tokens["user"]["role"] == "shopper"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["phone"] == "+8613800138000"

    raw = db_session.execute(
        sa.text("SELECT phone_enc, phone_hash FROM users WHERE id = :id"),
        {"id": tokens["user"]["id"]},
    ).one()
    assert "13800138000" not in raw.phone_enc and "13800138000" not in raw.phone_hash
    assert raw.phone_enc.startswith(settings.pii_key_id + ":")
    # The OTP table holds only hashes, and notifications only the phone's blind index.
    for table, column in (("otp_codes", "phone_hash"), ("notifications", "recipient_hash")):
        values = db_session.execute(sa.text(f"SELECT {column} FROM {table}")).scalars().all()  # noqa: S608
        assert values and not any("13800138000" in (v or "") for v in values)

    again = _otp_login(client, db_session, settings, PHONE)
    assert again["user"]["id"] == tokens["user"]["id"], "same phone, same account"


def test_wrong_codes_are_counted_and_lock_the_code(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    phone = "+8613900000001"
    client.post("/api/v1/auth/otp", json={"phone": phone})
    good = _last_code(db_session, settings, phone)
    bad = f"{(int(good) + 1) % 10**6:06d}"
    for attempt in range(settings.otp_max_attempts):
        r = client.post(
            "/api/v1/auth/token", json={"grant_type": "otp", "phone": phone, "code": bad}
        )
        assert r.status_code == 401 and r.json()["code"] == "OTP_INVALID", attempt
        assert r.json()["attempts_left"] == settings.otp_max_attempts - attempt - 1
    locked = client.post(
        "/api/v1/auth/token", json={"grant_type": "otp", "phone": phone, "code": good}
    )
    assert locked.status_code == 429
    assert locked.json()["code"] == "OTP_LOCKED"
    assert int(locked.headers["Retry-After"]) >= 1


def test_expired_code_is_refused(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    phone = "+8613900000002"
    client.post("/api/v1/auth/otp", json={"phone": phone})
    code = _last_code(db_session, settings, phone)
    db_session.execute(sa.update(OtpCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    r = client.post("/api/v1/auth/token", json={"grant_type": "otp", "phone": phone, "code": code})
    assert r.status_code == 401 and r.json()["code"] == "OTP_INVALID"


def test_code_is_single_use_and_a_new_code_kills_the_old(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    phone = "+8613900000003"
    client.post("/api/v1/auth/otp", json={"phone": phone})
    first = _last_code(db_session, settings, phone)
    client.post("/api/v1/auth/otp", json={"phone": phone})
    second = _last_code(db_session, settings, phone)
    body = {"grant_type": "otp", "phone": phone}
    if first != second:
        assert client.post("/api/v1/auth/token", json={**body, "code": first}).status_code == 401
    assert client.post("/api/v1/auth/token", json={**body, "code": second}).status_code == 200
    assert client.post("/api/v1/auth/token", json={**body, "code": second}).status_code == 401


def test_otp_requests_are_rate_limited_per_phone(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    phone = "+8613900000004"
    for _ in range(settings.otp_per_phone_per_hour):
        assert client.post("/api/v1/auth/otp", json={"phone": phone}).status_code == 202
    r = client.post("/api/v1/auth/otp", json={"phone": phone})
    assert r.status_code == 429 and r.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 3600


def test_bad_phone_and_bad_grant_are_422_with_fields(client: TestClient) -> None:
    r = client.post("/api/v1/auth/otp", json={"phone": "12ab"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "phone"
    r = client.post("/api/v1/auth/otp", json={"phone": "+0000000000"})
    assert r.status_code == 422 and r.json()["code"] == "INVALID_PHONE"
    r = client.post("/api/v1/auth/token", json={"grant_type": "magic"})
    assert r.status_code == 422
    r = client.post(
        "/api/v1/auth/token", json={"grant_type": "otp", "phone": "+8613900000005", "code": "12"}
    )
    assert r.status_code == 422 and any(e["field"].endswith("code") for e in r.json()["errors"])


def test_password_grant_and_refresh_rotation_with_reuse_detection(
    client: TestClient, db_session: Session
) -> None:
    merchant = make_merchant(db_session)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    wrong = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "login": staff.login, "password": "nope"},
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "INVALID_CREDENTIALS"
    unknown = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "login": "nobody-here", "password": STAFF_PASSWORD},
    )
    assert unknown.status_code == 401 and unknown.json()["code"] == "INVALID_CREDENTIALS"

    first = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "login": staff.login, "password": STAFF_PASSWORD},
    ).json()
    assert first["user"]["merchant_id"] == merchant.id
    second = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert second.status_code == 200
    new_refresh = second.json()["refresh_token"]
    assert new_refresh != first["refresh_token"]

    # The spent token comes back (stolen?): refused, and the whole family is revoked.
    reused = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert reused.status_code == 401 and reused.json()["code"] == "REFRESH_TOKEN_REUSED"
    after = client.post(
        "/api/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": new_refresh}
    )
    assert after.status_code == 401

    # An access token is not a refresh token.
    as_refresh = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": first["access_token"]},
    )
    assert as_refresh.status_code == 401 and as_refresh.json()["code"] == "TOKEN_INVALID"


def test_expired_forged_and_missing_access_tokens(client: TestClient, settings: Settings) -> None:
    principal = Principal(id="u-1", role="admin")
    assert client.get("/api/v1/me").status_code == 401
    old = issue_access_token(settings, principal, now=utcnow() - timedelta(hours=1))
    r = client.get("/api/v1/me", headers={"Authorization": f"Bearer {old}"})
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_INVALID"
    other = make_settings(secret_key="another-secret-" + "z" * 32)
    forged = issue_access_token(other, principal)
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    )
    assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401


def test_addresses_are_encrypted_and_private(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    alice, bob = make_user(db_session), make_user(db_session)
    text = "上海市浦东新区 世纪大道 100 号 8 楼"
    r = client.post(
        "/api/v1/me/addresses", json={"text": text}, headers=auth_header(settings, alice)
    )
    assert r.status_code == 201
    raw = db_session.execute(sa.text("SELECT address_enc FROM addresses")).scalars().all()
    assert raw and all("世纪大道" not in v for v in raw)
    mine = client.get("/api/v1/me/addresses", headers=auth_header(settings, alice)).json()
    assert [a["text"] for a in mine] == [text]
    assert client.get("/api/v1/me/addresses", headers=auth_header(settings, bob)).json() == []


def test_only_admin_creates_staff(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    merchant = make_merchant(db_session)
    admin, ops = make_user(db_session, "admin"), make_user(db_session, "ops")
    body = {
        "role": "merchant_staff",
        "login": "clerk-1",
        "password": "x" * 12,
        "merchant_id": merchant.id,
    }
    assert (
        client.post("/api/v1/users", json=body, headers=auth_header(settings, ops)).status_code
        == 403
    )
    r = client.post("/api/v1/users", json=body, headers=auth_header(settings, admin))
    assert r.status_code == 201, r.text
    assert (
        client.post("/api/v1/users", json=body, headers=auth_header(settings, admin)).status_code
        == 409
    )
    ghost = {**body, "login": "clerk-3", "merchant_id": "no-such-merchant"}
    r = client.post("/api/v1/users", json=ghost, headers=auth_header(settings, admin))
    assert r.status_code == 422 and r.json()["field"] == "merchant_id"
    no_merchant = {**body, "login": "clerk-2", "merchant_id": None}
    r = client.post("/api/v1/users", json=no_merchant, headers=auth_header(settings, admin))
    assert r.status_code == 422
    login = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "password", "login": "clerk-1", "password": "x" * 12},
    )
    assert login.status_code == 200 and login.json()["user"]["role"] == "merchant_staff"
    audit = db_session.execute(sa.text("SELECT action FROM audit_log WHERE action = 'user.create'"))
    assert audit.scalars().all() == ["user.create"]


def test_logout_revokes_the_refresh_family(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    tokens = _otp_login(client, db_session, settings, "+8613900000009")
    rotated = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    ).json()
    assert (
        client.post(
            "/api/v1/auth/logout", json={"refresh_token": rotated["refresh_token"]}
        ).status_code
        == 204
    )
    after = client.post(
        "/api/v1/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
    )
    assert after.status_code == 401
    assert (
        client.post("/api/v1/auth/logout", json={"refresh_token": "not-a-token-at-all"}).status_code
        == 401
    )
