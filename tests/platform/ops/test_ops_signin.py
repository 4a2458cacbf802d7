"""/ops/login: the sign-in limits of the API, one answer for every failure, lockout alerts."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from telemetry.settings import TelemetrySettings
from tests.conftest import make_settings
from tests.platform.factories import STAFF_PASSWORD, auth_header, make_merchant, make_user
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.ops.auth import COOKIE
from tuanbox.settings import Settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        signin_max_failures=3,
        auth_token_per_ip_per_min=30,
    )


def _login(client: TestClient, login: str, password: str) -> tuple[int, str]:
    r = client.post(
        "/ops/login", data={"login": login, "password": password}, follow_redirects=False
    )
    return r.status_code, r.text


def test_every_refused_sign_in_is_the_same_answer(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ops = make_user(db_session, "ops")
    staff = make_user(db_session, "merchant_staff", make_merchant(db_session).id)
    disabled = make_user(db_session, "ops")
    disabled.active = False
    db_session.flush()
    assert ops.login and staff.login and disabled.login
    wrong = _login(client, ops.login, "not the password")
    assert wrong[0] == 401 and "Wrong login or password." in wrong[1]
    assert _login(client, "nobody-" + uuid.uuid4().hex, STAFF_PASSWORD) == wrong
    assert _login(client, staff.login, STAFF_PASSWORD) == wrong, "right password, not ops"
    assert _login(client, disabled.login, STAFF_PASSWORD) == wrong
    assert _login(client, "y" * 200, STAFF_PASSWORD) == wrong  # longer than any login
    for _ in range(settings.signin_max_failures - 1):
        _login(client, ops.login, "not the password")
    assert _login(client, ops.login, STAFF_PASSWORD) == wrong, "locked: the right password too"


def test_ops_login_shares_the_api_sign_in_window_per_ip(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    ops = make_user(db_session, "ops")
    assert ops.login
    api = {"grant_type": "password", "login": "nobody", "password": "x"}
    for _ in range(settings.auth_token_per_ip_per_min // 2):
        assert client.post("/api/v1/auth/token", json=api).status_code == 401
    for i in range(settings.auth_token_per_ip_per_min // 2):
        assert _login(client, f"nobody-{i}", "x")[0] == 401
    status, page = _login(client, ops.login, STAFF_PASSWORD)
    assert status == 429 and "Too many sign-in attempts" in page
    refused = client.post("/ops/login", data={"login": ops.login, "password": STAFF_PASSWORD})
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert client.post("/api/v1/auth/token", json=api).status_code == 429


def test_a_lockout_raises_one_alert_that_ops_see(
    client: TestClient,
    db_session: Session,
    settings: Settings,
    app: FastAPI,
    telemetry: TelemetrySettings,
) -> None:
    app.state.telemetry_settings = telemetry
    target = make_user(db_session, "ops")
    assert target.login
    for _ in range(settings.signin_max_failures + 2):
        assert _login(client, target.login, "guess")[0] == 401
    alerts = db_session.scalars(
        sa.select(OpsAlert).where(
            OpsAlert.kind == "signin_lockout", OpsAlert.detail.contains(target.id)
        )
    ).all()
    assert len(alerts) == 1 and alerts[0].severity == "critical"
    page = client.get("/ops/alerts", headers=auth_header(settings, make_user(db_session, "ops")))
    assert page.status_code == 200
    assert "signin_lockout" in page.text and target.login in page.text


def test_a_right_ops_password_still_signs_in(
    client: TestClient, db_session: Session, app: FastAPI, telemetry: TelemetrySettings
) -> None:
    app.state.telemetry_settings = telemetry
    ops = make_user(db_session, "ops")
    assert ops.login
    ok = client.post(
        "/ops/login",
        data={"login": ops.login, "password": STAFF_PASSWORD},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["set-cookie"].startswith(f"{COOKIE}=")
    assert client.get("/ops").status_code == 200
