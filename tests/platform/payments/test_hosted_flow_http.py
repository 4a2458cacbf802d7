"""The whole SimPay round trip over real HTTP: a running API, the hosted page, the webhook POST."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_sku, make_user
from tests.support import free_port
from tuanbox.api.app import create_app
from tuanbox.api.live import serve
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.settings import Settings

Running = tuple[str, Settings, sessionmaker[Session]]


@pytest.fixture
def running_api(fresh_database: Callable[[], str]) -> Iterator[Running]:
    url, port = fresh_database(), free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(
        database_url=url,
        public_base_url=base,
        simpay_webhook_url=f"{base}/api/v1/payments/sim/webhook",
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
    )
    engine = make_engine(url)
    try:
        with serve(create_app(settings, engine), port=port):
            yield base, settings, make_session_factory(engine)
    finally:
        engine.dispose()


def test_pay_on_hosted_page_and_webhook_arrives_over_http(running_api: Running) -> None:
    base, settings, factory = running_api
    with factory() as session, session.begin():
        shopper = make_user(session)
        sku_id = make_sku(session, price_cents=1234).id
        headers = auth_header(settings, shopper)
    with httpx.Client(base_url=base, timeout=10) as http:
        order = http.post(
            "/api/v1/orders", json={"sku_id": sku_id, "qty": 1}, headers=headers
        ).json()
        intent = http.post(
            f"/api/v1/orders/{order['id']}/payments", json={}, headers=headers
        ).json()
        assert intent["checkout_url"] == f"{base}/pay/sim/{intent['id']}"
        page = http.get(intent["checkout_url"])
        assert page.status_code == 200 and "12.34" in page.text
        assert http.post(f"{intent['checkout_url']}/confirm").status_code == 200
        # The webhook is POSTed by a background task after the page answers: poll for it.
        deadline = time.monotonic() + 20
        while True:
            status = http.get(f"/api/v1/orders/{order['id']}", headers=headers).json()["status"]
            if status == "paid":
                break
            assert time.monotonic() < deadline, f"webhook never applied (order {status})"
            time.sleep(0.05)
