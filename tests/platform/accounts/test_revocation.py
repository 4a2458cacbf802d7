"""Disabling an account stops its access tokens at once, on every replica, Redis up or down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import STAFF_PASSWORD, auth_header, make_user
from tuanbox.accounts.models import RefreshToken, User
from tuanbox.accounts.revocation import PREFIX, Revocations, min_version_from_db, republish
from tuanbox.accounts.tokens import issue_refresh_token
from tuanbox.api.app import create_app
from tuanbox.audit.models import AuditEntry
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.settings import Settings

REASON = {"reason": "phone reported stolen"}


def _disable(client: TestClient, admin: dict[str, str], user_id: str) -> dict[str, object]:
    r = client.post(f"/api/v1/users/{user_id}/disable", json=REASON, headers=admin)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_disabled_users_access_token_stops_working_at_once(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = auth_header(settings, make_user(db_session, "admin"))
    shopper = make_user(db_session)
    token = auth_header(settings, shopper)
    refresh = issue_refresh_token(db_session, settings, shopper)
    assert client.get("/api/v1/me", headers=token).status_code == 200

    body = _disable(client, admin, shopper.id)
    assert body["active"] is False
    r = client.get("/api/v1/me", headers=token)
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_REVOKED"
    again = client.post(
        "/api/v1/auth/token", json={"grant_type": "refresh_token", "refresh_token": refresh}
    )
    assert again.status_code == 401
    assert db_session.scalars(
        sa.select(RefreshToken.revoked_at).where(RefreshToken.user_id == shopper.id)
    ).all() != [None]
    entry = db_session.scalars(
        sa.select(AuditEntry).where(
            AuditEntry.action == "user.disable", AuditEntry.subject_id == shopper.id
        )
    ).one()
    assert entry.reason == REASON["reason"] and entry.details == {"refresh_tokens_revoked": 1}


def test_re_enabled_user_signs_in_again_but_old_tokens_stay_dead(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = auth_header(settings, make_user(db_session, "admin"))
    staff = make_user(db_session, "ops")
    assert staff.login is not None
    old = auth_header(settings, staff)
    _disable(client, admin, staff.id)
    sign_in = {"grant_type": "password", "login": staff.login, "password": STAFF_PASSWORD}
    assert client.post("/api/v1/auth/token", json=sign_in).status_code == 401

    r = client.post(f"/api/v1/users/{staff.id}/enable", json=REASON, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is True
    fresh = client.post("/api/v1/auth/token", json=sign_in)
    assert fresh.status_code == 200, "no clock involved: at once, even within the same second"
    new = {"Authorization": f"Bearer {fresh.json()['access_token']}"}
    assert client.get("/api/v1/me", headers=new).status_code == 200
    assert client.get("/api/v1/me", headers=old).status_code == 401
    actions = db_session.scalars(
        sa.select(AuditEntry.action)
        .where(AuditEntry.subject_id == staff.id)
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["user.disable", "user.enable"]


def test_only_admins_disable_and_not_themselves(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin_user = make_user(db_session, "admin")
    admin = auth_header(settings, admin_user)
    target = make_user(db_session)
    for role in ("ops", "shopper", "merchant_staff"):
        other = auth_header(settings, make_user(db_session, role))
        r = client.post(f"/api/v1/users/{target.id}/disable", json=REASON, headers=other)
        assert r.status_code == 403, role
    assert client.post(f"/api/v1/users/{target.id}/disable", json=REASON).status_code == 401
    r = client.post(f"/api/v1/users/{admin_user.id}/disable", json=REASON, headers=admin)
    assert r.status_code == 409 and r.json()["code"] == "CANNOT_DISABLE_SELF"
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        client.post(f"/api/v1/users/{missing}/disable", json=REASON, headers=admin).status_code
        == 404
    )
    for bad in ("a%00b", "x" * 37, "..%2F..%2Fetc"):
        r = client.post(f"/api/v1/users/{bad}/disable", json=REASON, headers=admin)
        assert r.status_code in (404, 422), (bad, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
    r = client.post(f"/api/v1/users/{target.id}/disable", json={"reason": ""}, headers=admin)
    assert r.status_code == 422
    assert db_session.get(User, target.id).active  # type: ignore[union-attr]


def test_revoked_ops_cookie_and_bearer_are_refused_on_ops_pages(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = auth_header(settings, make_user(db_session, "admin"))
    ops = make_user(db_session, "ops")
    bearer = auth_header(settings, ops)
    assert client.post("/ops/alerts/999999/acknowledge", json={}, headers=bearer).status_code == 404
    _disable(client, admin, ops.id)
    assert client.post("/ops/alerts/999999/acknowledge", json={}, headers=bearer).status_code == 401
    client.cookies.set("tuanbox_ops", bearer["Authorization"][7:], path="/ops")
    assert client.get("/ops", follow_redirects=False).headers["location"] == "/ops/login"
    assert client.get("/ops/stream").status_code == 401
    handover = client.get(f"/ops/login?token={bearer['Authorization'][7:]}", follow_redirects=False)
    assert handover.status_code == 401 and "set-cookie" not in handover.headers


def test_redis_losing_the_markers_is_repaired_from_the_db(
    db_session: Session, settings: Settings, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    revocations = Revocations(client, settings.access_token_ttl_s)
    user = make_user(db_session)
    now = utcnow()
    user.token_version, user.tokens_revoked_at = 3, now
    stale = make_user(db_session)
    stale.token_version = 1
    stale.tokens_revoked_at = now - timedelta(seconds=settings.access_token_ttl_s + 120)
    db_session.flush()
    client.delete(PREFIX + user.id, PREFIX + stale.id)
    assert republish(db_session, revocations, now=now, ttl_s=settings.access_token_ttl_s) >= 1
    assert revocations.min_version(user.id) == 3
    assert revocations.min_version(stale.id) is None, "its tokens have all expired: none kept"
    ttl = client.ttl(PREFIX + user.id)
    assert settings.access_token_ttl_s < ttl <= settings.access_token_ttl_s + 60
    client.close()


def test_min_version_from_the_db(db_session: Session) -> None:
    active, disabled = make_user(db_session), make_user(db_session)
    active.token_version = 2
    disabled.active = False
    db_session.flush()
    assert min_version_from_db(db_session, active.id) == 2
    assert min_version_from_db(db_session, disabled.id) > 10**9
    assert min_version_from_db(db_session, "no-such-user") > 10**9


@pytest.fixture
def committed_db(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


def test_with_redis_down_the_check_falls_back_to_the_db(committed_db: str) -> None:
    settings = make_settings(database_url=committed_db, redis_url="redis://127.0.0.1:1/0")
    engine = make_engine(committed_db)
    with session_scope(make_session_factory(engine)) as session:
        active, disabled = make_user(session), make_user(session)
        disabled.active = False
        session.flush()
        ok, dead = auth_header(settings, active), auth_header(settings, disabled)
    with TestClient(create_app(settings, engine=engine)) as client:
        assert client.get("/api/v1/me", headers=ok).status_code == 200
        r = client.get("/api/v1/me", headers=dead)
        assert r.status_code == 401 and r.json()["code"] == "TOKEN_REVOKED"
    engine.dispose()


def test_flash_sale_hot_path_refuses_a_revoked_token(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    admin = auth_header(settings, make_user(db_session, "admin"))
    shopper = make_user(db_session)
    url = "/api/v1/flash-sales/00000000-0000-4000-8000-000000000000/reservations"
    headers = {**auth_header(settings, shopper), "Idempotency-Key": "buy-00000001"}
    assert client.post(url, json={"qty": 1}, headers=headers).status_code == 404
    _disable(client, admin, shopper.id)
    r = client.post(url, json={"qty": 1}, headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "TOKEN_REVOKED"
