"""/dev/inbox: in development a person reads sign-in and pickup codes there; elsewhere it is 404."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import make_user
from tests.platform.notifications.test_sms_settings import GATEWAY, production
from tuanbox.api.app import create_app
from tuanbox.api.deps import get_session
from tuanbox.notifications.services import notify
from tuanbox.settings import Settings

PHONE = "+8613700137000"
CODE = re.compile(r'<span class="code">(\d{6})</span>')


@pytest.fixture
def client_for(engine: Engine, db_session: Session) -> Iterator[Callable[[Settings], TestClient]]:
    clients: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        app = create_app(settings, engine=engine)

        def _session() -> Iterator[Session]:
            yield db_session

        app.dependency_overrides[get_session] = _session
        client = TestClient(app)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def dev_settings(settings: Settings) -> Settings:
    return make_settings(
        env="development",
        database_url=settings.database_url,
        rate_limit_prefix=settings.rate_limit_prefix,
    )


def test_in_development_the_inbox_is_a_phone_readable_page(
    client_for: Callable[[Settings], TestClient], dev_settings: Settings
) -> None:
    page = client_for(dev_settings).get("/dev/inbox")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert page.headers["cache-control"] == "no-store"
    # Its one inline style carries the response's CSP nonce, so the browser applies it.
    [nonce] = re.findall(r'<style nonce="([^"]+)">', page.text)
    assert f"'nonce-{nonce}'" in page.headers["content-security-policy"]


def test_an_otp_requested_through_the_api_can_be_read_there_and_signs_in(
    client_for: Callable[[Settings], TestClient], dev_settings: Settings
) -> None:
    client = client_for(dev_settings)
    assert client.post("/api/v1/auth/otp", json={"phone": PHONE}).status_code == 202
    page = client.get("/dev/inbox")
    assert "otp" in page.text and PHONE in page.text
    [code] = CODE.findall(page.text)
    r = client.post("/api/v1/auth/token", json={"grant_type": "otp", "phone": PHONE, "code": code})
    assert r.status_code == 200, r.text


def test_a_pickup_code_shows_there_too(
    client_for: Callable[[Settings], TestClient], dev_settings: Settings, db_session: Session
) -> None:
    user = make_user(db_session)
    payload = {"fallback_code": "654321", "compartment": "A-03"}
    notify(db_session, user.id, "pickup_ready", payload, settings=dev_settings)
    page = client_for(dev_settings).get("/dev/inbox").text
    assert CODE.findall(page) == ["654321"] and "compartment=A-03" in page


@pytest.mark.parametrize("env", ["test", "production"])
def test_outside_development_the_route_does_not_exist(
    client_for: Callable[[Settings], TestClient], settings: Settings, env: str
) -> None:
    configured = (
        settings if env == "test" else production(**GATEWAY, database_url=settings.database_url)
    )
    client = client_for(configured)
    r = client.get("/dev/inbox")
    assert r.status_code == 404 and r.json()["code"] == "NOT_FOUND"
    assert not [route for route in client.app.routes if getattr(route, "path", "") == "/dev/inbox"]  # type: ignore[attr-defined]
