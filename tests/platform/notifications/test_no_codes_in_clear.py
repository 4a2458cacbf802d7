"""OTP and pickup codes never reach our tables or logs in clear, in any environment.

Each test dumps the notifications table (every column, as a DBA would see it) and the logs
captured at DEBUG, and looks for the code. Development and test keep codes encrypted for the
inbox; the gateway (production) keeps none: the code reaches the gateway and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.envelopes import hash_code
from tests.conftest import make_settings
from tests.platform.factories import make_user
from tests.platform.fulfilment.fx import confirm, make_locker, make_order, make_sku, make_station
from tests.platform.notifications.fake_sms_gateway import TEMPLATES, FakeSmsGateway
from tests.platform.notifications.test_sms_gateway import gateway_settings
from tuanbox.api.app import create_app
from tuanbox.api.deps import get_session
from tuanbox.crypto import PiiCipher
from tuanbox.fulfilment import lifecycle
from tuanbox.fulfilment.hooks import bind_settings
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.services import CompartmentSpec
from tuanbox.notifications import outbox
from tuanbox.notifications.models import Notification, SmsOutbox
from tuanbox.notifications.records import secrets_of
from tuanbox.notifications.services import notify
from tuanbox.settings import Settings

PHONE = "+8613900139000"
DIGITS = "13900139000"
KNOWN = 271828  # what secrets.randbelow answers, so the code is known whatever stores it


def dump(session: Session, table: str) -> str:
    """Every column of every row, as text: what a database dump or a curious DBA would see."""
    session.flush()
    rows = session.execute(sa.text(f"SELECT * FROM {table}")).all()  # noqa: S608
    return "\n".join(repr(tuple(row)) for row in rows)


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway() as gateway:
        yield gateway


@pytest.fixture
def gw_settings(settings: Settings, fake: FakeSmsGateway) -> Settings:
    """The test database and rate-limit namespace, texting through the fake gateway."""
    return gateway_settings(
        fake.url,
        database_url=settings.database_url,
        rate_limit_prefix=settings.rate_limit_prefix,
        sms_max_attempts=2,
    )


@pytest.fixture
def gw_client(gw_settings: Settings, engine: Engine, db_session: Session) -> Iterator[TestClient]:
    app = create_app(gw_settings, engine=engine)

    def _session() -> Iterator[Session]:
        yield db_session

    app.dependency_overrides[get_session] = _session
    with TestClient(app) as c:
        yield c


def _sign_in(client: TestClient, code: str) -> int:
    r = client.post("/api/v1/auth/token", json={"grant_type": "otp", "phone": PHONE, "code": code})
    return r.status_code


def test_otp_code_is_neither_stored_nor_logged_in_clear(
    client: TestClient,
    db_session: Session,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("tuanbox.accounts.services.secrets.randbelow", lambda _n: KNOWN)
    assert client.post("/api/v1/auth/otp", json={"phone": PHONE}).status_code == 202

    code = f"{KNOWN:06d}"
    assert "otp" in dump(db_session, "notifications"), "the message is still recorded"
    assert code not in dump(db_session, "notifications")
    assert code not in dump(db_session, "otp_codes")
    assert code not in caplog.text and DIGITS not in caplog.text
    # Test and development keep it encrypted, for the inbox, bound to its row.
    row = db_session.scalars(select(Notification).where(Notification.template == "otp")).one()
    assert row.payload == {"ttl_s": settings.otp_ttl_s, "redacted": ["code"]}
    assert secrets_of(PiiCipher(settings), row) == {"code": code, "to": PHONE}
    # And the code a person received still signs in.
    assert _sign_in(client, code) == 200


def test_through_the_gateway_the_code_reaches_the_gateway_and_nothing_else(
    gw_client: TestClient,
    db_session: Session,
    fake: FakeSmsGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert gw_client.post("/api/v1/auth/otp", json={"phone": PHONE}).status_code == 202

    [sent] = fake.received
    assert sent.phone == PHONE and sent.template_code == TEMPLATES["otp"]
    code = sent.params["code"]
    assert len(code) == 6 and code.isdigit()
    table = dump(db_session, "notifications")
    assert code not in table and code not in dump(db_session, "otp_codes")
    assert code not in caplog.text and DIGITS not in caplog.text and DIGITS not in table
    row = db_session.scalars(select(Notification).where(Notification.template == "otp")).one()
    assert row.secrets_enc is None and row.payload["redacted"] == ["code"]
    assert row.payload["message_id"] == "000001^0"
    assert _sign_in(gw_client, code) == 200


def test_a_gateway_outage_is_a_503_problem_and_no_code_is_kept(
    gw_client: TestClient,
    db_session: Session,
    fake: FakeSmsGateway,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("tuanbox.accounts.services.secrets.randbelow", lambda _n: KNOWN)
    fake.fail_with = [503, 503]
    r = gw_client.post("/api/v1/auth/otp", json={"phone": PHONE})
    assert r.status_code == 503 and r.json()["code"] == "SMS_UNAVAILABLE"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert fake.attempts == 2
    # Nothing was sent, so no message is recorded (the request's transaction rolls back).
    assert dump(db_session, "notifications") == ""
    code = f"{KNOWN:06d}"
    assert code not in dump(db_session, "otp_codes")
    assert code not in caplog.text and DIGITS not in caplog.text


def _worker_round(session: Session, settings: Settings) -> int:
    """The worker's round of queued texts, on this test's connection (after the deposit)."""
    factory = sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")
    return outbox.deliver_due(factory, settings, now=datetime.now(UTC) + timedelta(minutes=1))


def _deposited(session: Session, settings: Settings, shopper_phone: str | None) -> Booking:
    bind_settings(session, settings)
    station = make_station(session)
    make_locker(session, station.id, [CompartmentSpec(0, 1, "S")])
    shopper = make_user(session, phone=shopper_phone, settings=settings)
    order = make_order(session, user=shopper, sku=make_sku(session), station_id=station.id)
    confirm(session, order)
    booking = session.scalars(select(Booking)).one()
    ctx = lifecycle.Context(settings, Ed25519PrivateKey.generate())
    assert lifecycle.deposited(session, booking, ctx=ctx, now=datetime.now(UTC))
    return booking


def test_pickup_fallback_code_is_kept_only_encrypted_in_test_and_development(
    db_session: Session, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    booking = _deposited(db_session, settings, None)
    row = db_session.scalars(
        select(Notification).where(Notification.template == "pickup_ready")
    ).one()
    code = secrets_of(PiiCipher(settings), row)["fallback_code"]
    assert code.isdigit() and hash_code(code, booking.locker_id) == booking.fallback_code_hash
    assert "fallback_code" not in row.payload and row.payload["redacted"] == ["fallback_code"]
    assert code not in dump(db_session, "notifications") and code not in caplog.text


def test_pickup_fallback_code_is_texted_to_the_shopper_through_the_gateway(
    db_session: Session,
    gw_settings: Settings,
    fake: FakeSmsGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    booking = _deposited(db_session, gw_settings, PHONE)
    assert fake.received == []  # queued with the deposit, sent by the worker
    assert _worker_round(db_session, gw_settings) == 1
    [sent] = fake.received
    assert sent.phone == PHONE and sent.template_code == TEMPLATES["pickup_ready"]
    code = sent.params["fallback_code"]
    assert hash_code(code, booking.locker_id) == booking.fallback_code_hash
    assert sent.params["compartment"] and sent.params["locker_id"] == booking.locker_id
    table = dump(db_session, "notifications")
    assert code not in table and code not in caplog.text and DIGITS not in caplog.text
    channels = db_session.execute(
        select(Notification.channel, Notification.secrets_enc).where(
            Notification.template == "pickup_ready"
        )
    ).all()
    assert sorted(channels) == [("app", None), ("sms", None)]


def test_a_failed_pickup_text_does_not_undo_the_deposit(
    db_session: Session, gw_settings: Settings, fake: FakeSmsGateway
) -> None:
    fake.fail_with = [503, 503]
    booking = _deposited(db_session, gw_settings, PHONE)
    assert _worker_round(db_session, gw_settings) == 0
    assert booking.state == "deposited" and fake.received == []
    row = db_session.scalars(
        select(Notification).where(Notification.template == "pickup_ready")
    ).one()
    assert row.channel == "app" and row.secrets_enc is None
    queued = db_session.scalars(select(SmsOutbox)).one()
    assert (queued.state, queued.last_error) == ("pending", "SMS_UNAVAILABLE")


def test_an_unreadable_phone_is_a_failed_text_not_a_failed_notice(
    db_session: Session, gw_settings: Settings, fake: FakeSmsGateway
) -> None:
    retired = make_settings(pii_key="retired-" + "r" * 40, pii_key_id="k0")
    user = make_user(db_session, phone=PHONE, settings=retired)  # a key these settings lack
    row = notify(
        db_session, user.id, "pickup_ready", {"fallback_code": "123456"}, settings=gw_settings
    )
    assert row.payload == {"redacted": ["fallback_code"]}
    assert _worker_round(db_session, gw_settings) == 0
    queued = db_session.scalars(select(SmsOutbox)).one()
    assert (queued.state, queued.last_error) == ("failed", "PII_DECRYPT_FAILED")
    assert fake.attempts == 0


def test_a_notice_with_a_code_needs_the_process_settings(db_session: Session) -> None:
    user = make_user(db_session)
    with pytest.raises(RuntimeError, match="carries a code"):
        notify(db_session, user.id, "pickup_ready", {"fallback_code": "123456"})
    # Notices without codes need none (order hooks cannot see the settings).
    row = notify(db_session, user.id, "order_paid", {"order_id": "o-1", "cents": 500})
    assert row.payload == {"order_id": "o-1", "cents": 500} and row.secrets_enc is None
