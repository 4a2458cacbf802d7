"""Sign-in limits: per phone and device before per IP, all settings; the password lockout."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import STAFF_PASSWORD, make_user
from tuanbox.accounts import services
from tuanbox.accounts.models import OtpCode, User
from tuanbox.api.app import create_app
from tuanbox.api.deps import get_session
from tuanbox.crypto import PiiCipher
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.settings import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Small limits, so each window is reached in a few requests; a namespace of our own."""
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
        auth_token_per_phone_per_min=3,
        auth_token_per_device_per_min=4,
        auth_token_per_ip_per_min=100,
        signin_max_failures=3,
    )


@pytest.fixture
def small_ip_client(
    settings: Settings, engine: Engine, db_session: Session
) -> Iterator[TestClient]:
    """The app with an IP window of 8 a minute (the other windows as above)."""
    app = create_app(settings.model_copy(update={"auth_token_per_ip_per_min": 8}), engine=engine)

    def _session() -> Iterator[Session]:
        yield db_session

    app.dependency_overrides[get_session] = _session
    with TestClient(app) as client:
        yield client


class CapturedSms:
    """Our own SmsSender port, keeping the last code it was asked to text."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}

    def send(
        self, session: Session, phone: str, phone_hash: str, template: str, payload: Any
    ) -> Any:
        self.codes[phone] = str(payload["code"])
        return None


def _otp(phone: str, code: str = "000000") -> dict[str, str]:
    return {"grant_type": "otp", "phone": phone, "code": code}


def test_phone_spellings_are_one_account(db_session: Session, settings: Settings) -> None:
    sms = CapturedSms()
    services.request_otp(db_session, settings, "+86 138-0013-8000", sms=sms)
    assert list(sms.codes) == ["+8613800138000"], "texted, encrypted and indexed in E.164"
    first = services.verify_otp(db_session, settings, "8613800138000", sms.codes["+8613800138000"])
    for spelling in ("13800138000", "+8613800138000", "0086 138 0013 8000"):
        services.request_otp(db_session, settings, spelling, sms=sms)
        again = services.verify_otp(db_session, settings, spelling, sms.codes["+8613800138000"])
        assert again.id == first.id, spelling
    cipher = PiiCipher(settings)
    assert first.phone_hash == cipher.blind_index("+8613800138000")
    assert cipher.decrypt(first.phone_enc or "", context="phone") == "+8613800138000"


def test_otp_requests_index_every_spelling_alike(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    for spelling in ("+8613700000002", "8613700000002", "13700000002", "+86 137-0000-0002"):
        r = client.post("/api/v1/auth/otp", json={"phone": spelling})
        assert r.status_code == 202, (spelling, r.text)
    hashes = set(db_session.scalars(sa.select(OtpCode.phone_hash)))
    assert hashes == {PiiCipher(settings).blind_index("+8613700000002")}


@pytest.mark.parametrize(
    "phone",
    [
        "+86139000000",  # one digit short: the old check took any 7-15 digits
        "1380013800",
        "138\x0000138000",
        "+8613800138000 ext 5",
        "٣٨٠٠١٣٨٠٠٠٠",  # Arabic-Indic digits
        "9" * 33,
    ],
)
def test_invalid_phones_are_422(client: TestClient, phone: str) -> None:
    r = client.post("/api/v1/auth/otp", json={"phone": phone})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    r = client.post("/api/v1/auth/token", json=_otp(phone))
    assert r.status_code == 422, r.text


def test_otp_grant_is_limited_per_phone_before_the_ip(
    client: TestClient, settings: Settings
) -> None:
    phone = "+8613900000011"
    statuses = [client.post("/api/v1/auth/token", json=_otp(phone)).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # The phone's window is full, not the IP's: another shopper on the same address goes on.
    assert client.post("/api/v1/auth/token", json=_otp("+8613900000012")).status_code == 401


def test_limits_per_device_then_per_ip_are_settings(small_ip_client: TestClient) -> None:
    client = small_ip_client
    device = {"X-Device-ID": "android-" + uuid.uuid4().hex}
    phones = [f"+86139000001{i:02d}" for i in range(10)]
    by_device = [
        client.post("/api/v1/auth/token", json=_otp(p), headers=device).status_code
        for p in phones[:5]
    ]
    assert by_device == [401, 401, 401, 401, 429]
    # A device refused by its own window did not spend the IP's: 4 of 8 used so far.
    other = [client.post("/api/v1/auth/token", json=_otp(p)).status_code for p in phones[5:10]]
    assert other == [401, 401, 401, 401, 429]
    refused = client.post("/api/v1/auth/token", json=_otp(phones[0]))
    assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    "device",
    [b"short", b"x" * 65, b"bad id with spaces", "naïve-device-1".encode(), b"a\x00bcdefgh"],
)
def test_device_id_is_bounded_and_validated(client: TestClient, device: bytes) -> None:
    r = client.post(
        "/api/v1/auth/token", json=_otp("+8613900000013"), headers={b"X-Device-ID": device}
    )
    assert r.status_code == 422, r.text


def _password(client: TestClient, login: str, password: str) -> tuple[int, dict[str, Any]]:
    r = client.post(
        "/api/v1/auth/token", json={"grant_type": "password", "login": login, "password": password}
    )
    return r.status_code, r.json()


def _lockout_alerts(session: Session, user: User) -> list[OpsAlert]:
    return list(
        session.scalars(
            sa.select(OpsAlert).where(
                OpsAlert.kind == "signin_lockout", OpsAlert.detail.contains(user.id)
            )
        )
    )


def test_password_lockout_answers_like_a_wrong_password_and_alerts_once(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    staff = make_user(db_session, "admin")
    assert staff.login is not None
    wrong = _password(client, staff.login, "not the password")
    assert wrong[0] == 401 and wrong[1]["code"] == "INVALID_CREDENTIALS"
    unknown = _password(client, "nobody-" + uuid.uuid4().hex, STAFF_PASSWORD)
    assert unknown == wrong
    for _ in range(settings.signin_max_failures - 1):
        assert _password(client, staff.login, "not the password") == wrong
    assert len(_lockout_alerts(db_session, staff)) == 1
    # Locked: the right password gets the very same answer, and no second alert follows.
    assert _password(client, staff.login, STAFF_PASSWORD) == wrong
    assert _password(client, staff.login, "not the password") == wrong
    alerts = _lockout_alerts(db_session, staff)
    assert len(alerts) == 1
    assert alerts[0].status == "open" and alerts[0].severity == "critical"
    assert staff.login in alerts[0].detail and "testclient" in alerts[0].detail


def test_a_success_clears_the_failures_and_junk_logins_lock_silently(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    staff = make_user(db_session, "ops")
    assert staff.login is not None
    for _ in range(settings.signin_max_failures - 1):
        assert _password(client, staff.login, "nope")[0] == 401
    assert _password(client, staff.login, STAFF_PASSWORD)[0] == 200
    for _ in range(settings.signin_max_failures - 1):
        assert _password(client, staff.login, "nope")[0] == 401
    assert _password(client, staff.login, STAFF_PASSWORD)[0] == 200, "failures were cleared"
    for login in ("ghost-" + uuid.uuid4().hex, "y" * 100):
        for _ in range(settings.signin_max_failures):
            assert _password(client, login, "nope")[0] == 401
    assert not db_session.scalars(
        sa.select(OpsAlert).where(OpsAlert.detail.contains("ghost-"))
    ).all()
