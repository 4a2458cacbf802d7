"""WeChat Pay v3 through the real adapter against a local gateway speaking WeChat's wire format."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.factories import auth_header, make_order, make_sku, make_user
from tests.platform.payments.fake_wechatpay import FakeWeChatPay, Party
from tests.support import free_port
from tuanbox.api.app import create_app
from tuanbox.api.live import serve
from tuanbox.audit.services import Actor
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.errors import ProviderError
from tuanbox.payments.models import Payment, PaymentIntent, Refund
from tuanbox.payments.provider import checkout_origins, get_provider
from tuanbox.payments.services import process_refund, refund, start_checkout
from tuanbox.payments.wechatpay import WeChatPayProvider, out_trade_no
from tuanbox.settings import Settings

URL = "/api/v1/payments/wechat/webhook"


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeWeChatPay]:
    with FakeWeChatPay().running() as fake:
        yield fake


def wechat_settings(gateway: FakeWeChatPay, cert_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "payment_providers": "wechat",
        "wechatpay_mchid": gateway.mchid,
        "wechatpay_appid": gateway.appid,
        "wechatpay_merchant_serial_no": gateway.merchant.serial,
        "wechatpay_private_key": gateway.merchant.key_pem,
        "wechatpay_apiv3_key": gateway.apiv3_key,
        "wechatpay_gateway_url": gateway.url,
        "wechatpay_h5_url": gateway.url,  # the fake serves the cashier too
        "wechatpay_platform_cert_dir": str(cert_dir),
        "rate_limit_prefix": f"test:{uuid.uuid4().hex}:",
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def settings(database_url: str, gateway: FakeWeChatPay, tmp_path: Path) -> Settings:
    """The `client` fixture's app gets WeChat Pay as its only provider."""
    return wechat_settings(gateway, tmp_path / "certs", database_url=database_url)


def _intent(session: Session, settings: Settings, price: int = 2590) -> PaymentIntent:
    order = make_order(session, sku=make_sku(session, price_cents=price))
    return start_checkout(session, order, get_provider("wechat", settings), payer_ip="10.1.2.3")


def _paid(
    session: Session, settings: Settings, gateway: FakeWeChatPay, client: TestClient
) -> Order:
    intent = _intent(session, settings)
    body, headers = gateway.pay(out_trade_no(intent.id))
    r = client.post(URL, content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"status": "applied"}, r.text
    order = session.get(Order, intent.order_id)
    assert order is not None and order.status == "paid"
    return order


def test_checkout_gateway_pays_notification_marks_paid_over_http(
    fresh_database: Callable[[], str], gateway: FakeWeChatPay, tmp_path: Path
) -> None:
    url, port = fresh_database(), free_port()
    base = f"http://127.0.0.1:{port}"
    settings = wechat_settings(gateway, tmp_path / "certs", database_url=url, public_base_url=base)
    engine = make_engine(url)
    try:
        with serve(create_app(settings, engine), port=port):
            with make_session_factory(engine)() as session, session.begin():
                shopper = make_user(session)
                sku_id = make_sku(session, price_cents=4321).id
                headers = auth_header(settings, shopper)
            with httpx.Client(base_url=base, timeout=10) as http:
                order = http.post(
                    "/api/v1/orders", json={"sku_id": sku_id, "qty": 1}, headers=headers
                ).json()
                # No provider named: the first enabled one, WeChat Pay.
                r = http.post(f"/api/v1/orders/{order['id']}/payments", json={}, headers=headers)
                assert r.status_code == 201, r.text
                intent = r.json()
                assert intent["provider"] == "wechat"
                assert intent["checkout_url"].startswith(f"{gateway.url}/pay/mweb?prepay_id=wx")
                trade = gateway.transactions[out_trade_no(intent["id"])]
                assert trade["notify_url"] == f"{base}{URL}"
                assert trade["amount"] == {"total": 4321, "currency": "CNY"}
                assert trade["scene_info"]["payer_client_ip"] == "127.0.0.1"
                assert "time_expire" in trade
                # The shopper pays in WeChat; WeChat POSTs the notification to us.
                delivered = gateway.deliver(
                    trade["notify_url"], *gateway.pay(out_trade_no(intent["id"]))
                )
                assert delivered.status_code == 200, delivered.text
                status = http.get(f"/api/v1/orders/{order['id']}", headers=headers).json()
                assert status["status"] == "paid"
                # The sim gateway is not enabled here, so its routes are not there either.
                assert http.post(f"/pay/sim/{intent['id']}/confirm").status_code == 404
    finally:
        engine.dispose()
    assert ("GET", "/v3/certificates", 200) in gateway.requests
    assert ("POST", "/v3/pay/transactions/h5", 200) in gateway.requests


def test_forged_notifications_are_refused_and_pay_nothing(
    client: TestClient, db_session: Session, settings: Settings, gateway: FakeWeChatPay
) -> None:
    intent = _intent(db_session, settings)
    good_body, good_headers = gateway.pay(out_trade_no(intent.id))
    paid = {
        "mchid": gateway.mchid, "appid": gateway.appid, "out_trade_no": out_trade_no(intent.id),
        "transaction_id": "4200000000000000000000000001", "trade_state": "SUCCESS",
        "amount": {"total": intent.amount_cents},
    }  # fmt: skip
    stranger = Party("not WeChat")

    def forge(resource: dict[str, object] = paid, **how: object) -> tuple[bytes, dict[str, str]]:
        return gateway.notification("TRANSACTION.SUCCESS", resource, "transaction", **how)  # type: ignore[arg-type]

    stale = str(int(time.time()) - 3600)
    forged: dict[str, tuple[tuple[bytes, dict[str, str]], int]] = {
        "body edited after signing": (
            (good_body.replace(b'"event_type"', b'"event_type" '), good_headers),
            401,
        ),
        "signed by another key": (forge(signer=stranger), 401),
        "unknown certificate serial": (forge(signer=stranger, serial=stranger.serial), 401),
        "not a hex serial": ((good_body, {**good_headers, "Wechatpay-Serial": "ZZ-TOP"}), 401),
        "stale timestamp": ((good_body, {**good_headers, "Wechatpay-Timestamp": stale}), 401),
        "no signature headers": ((good_body, {"Content-Type": "application/json"}), 401),
        "oversized nonce": ((good_body, {**good_headers, "Wechatpay-Nonce": "a" * 100}), 401),
        "NUL byte in the body": ((good_body.replace(b"{", b"{\x00", 1), good_headers), 401),
        "ciphertext under another APIv3 key": (forge(apiv3_key="k" * 32), 422),
        "another merchant": (forge({**paid, "mchid": "1230000109"}), 422),
        "amount of 2^31 fen": (forge({**paid, "amount": {"total": 2**31}}), 422),
    }
    for what, ((body, headers), status) in forged.items():
        r = client.post(URL, content=body, headers=headers)
        assert r.status_code == status, (what, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json"), what
        assert r.json()["code"] in ("WEBHOOK_SIGNATURE_INVALID", "WEBHOOK_PAYLOAD_INVALID"), what
    assert db_session.scalar(sa.select(sa.func.count()).select_from(Payment)) == 0
    order = db_session.get(Order, intent.order_id)
    assert order is not None and order.status == "pending_payment"
    # The genuine one still works, once.
    assert client.post(URL, content=good_body, headers=good_headers).json() == {"status": "applied"}
    assert client.post(URL, content=good_body, headers=good_headers).json() == {
        "status": "duplicate"
    }
    db_session.refresh(order)
    assert order.status == "paid"


def test_refund_end_to_end_and_a_retried_refund_never_pays_twice(
    client: TestClient, db_session: Session, settings: Settings, gateway: FakeWeChatPay
) -> None:
    order = _paid(db_session, settings, gateway, client)
    transition(db_session, order, "cancelled", actor=Actor("u", "shopper"), reason="changed mind")
    owed = db_session.scalars(sa.select(Refund).where(Refund.order_id == order.id)).one()
    assert (owed.provider, owed.status, owed.amount_cents) == ("wechat", "pending", 2590)
    provider = get_provider("wechat", settings)
    # WeChat does the refund but its answer is lost: we only see a 500.
    gateway.lose_answers = 1
    assert process_refund(db_session, owed.id, provider) == "pending"
    assert owed.last_error and "SYSTEM_ERROR" in owed.last_error
    assert owed.id in gateway.refunds
    # The retry carries the same out_refund_no: WeChat answers the refund it already has.
    assert process_refund(db_session, owed.id, provider) == "succeeded"
    intent_id = db_session.scalar(
        sa.select(PaymentIntent.id).where(PaymentIntent.order_id == order.id)
    )
    assert intent_id and gateway.refunded_total(out_trade_no(intent_id)) == 2590
    assert [r["out_refund_no"] for r in gateway.refunds.values()].count(owed.id) == 1
    assert owed.provider_refund_id == gateway.refunds[owed.id]["refund_id"]
    db_session.refresh(order)
    assert (order.status, order.refunded_cents) == ("refunded", 2590)
    # WeChat's REFUND.SUCCESS notification arrives later: already known.
    body, headers = gateway.refund_done(owed.id)
    assert client.post(URL, content=body, headers=headers).json() == {"status": "duplicate"}


def test_refund_confirmed_by_notification_before_our_retry(
    client: TestClient, db_session: Session, settings: Settings, gateway: FakeWeChatPay
) -> None:
    order = _paid(db_session, settings, gateway, client)
    owed = refund(db_session, order, 590, "crushed box", key=f"goodwill:{order.id}")
    gateway.lose_answers = 1
    assert process_refund(db_session, owed.id, get_provider("wechat", settings)) == "pending"
    body, headers = gateway.refund_done(owed.id)
    assert client.post(URL, content=body, headers=headers).json() == {"status": "applied"}
    db_session.refresh(owed)
    assert owed.status == "succeeded"
    assert process_refund(db_session, owed.id, get_provider("wechat", settings)) == "done"


def test_gateway_5xx_is_a_provider_error_and_the_refund_is_retried(
    client: TestClient, db_session: Session, settings: Settings, gateway: FakeWeChatPay
) -> None:
    order = _paid(db_session, settings, gateway, client)
    owed = refund(db_session, order, 1000, "part refund", key=f"part:{order.id}")
    provider = get_provider("wechat", settings)
    intent_id = db_session.scalars(
        sa.select(PaymentIntent.id).where(PaymentIntent.order_id == order.id)
    ).one()
    gateway.fail_next = 1
    with pytest.raises(ProviderError, match="SYSTEM_ERROR"):
        provider.refund(db_session, refund_id=owed.id, intent_id=intent_id, amount_cents=1000)
    assert owed.id not in gateway.refunds
    gateway.fail_next = 2
    assert process_refund(db_session, owed.id, provider) == "pending"
    assert process_refund(db_session, owed.id, provider) == "pending"
    assert owed.attempts == 2 and owed.status == "pending"
    assert process_refund(db_session, owed.id, provider) == "succeeded"
    assert gateway.refunds[owed.id]["amount"]["refund"] == 1000


def test_checkout_when_the_gateway_fails_is_a_503_problem(
    client: TestClient, db_session: Session, settings: Settings, gateway: FakeWeChatPay
) -> None:
    shopper = make_user(db_session)
    order = make_order(db_session, user=shopper)
    gateway.fail_next = 1
    r = client.post(
        f"/api/v1/orders/{order.id}/payments", json={}, headers=auth_header(settings, shopper)
    )
    assert r.status_code == 503, r.text
    assert r.json()["code"] == "PAYMENT_PROVIDER_ERROR"
    r = client.post(
        f"/api/v1/orders/{order.id}/payments",
        json={"provider": "sim"},
        headers=auth_header(settings, shopper),
    )
    assert (r.status_code, r.json()["code"]) == (404, "UNKNOWN_PAYMENT_PROVIDER")


def test_an_h5_url_off_the_configured_cashier_is_refused_and_pages_may_go_to_it(
    db_session: Session, gateway: FakeWeChatPay, tmp_path: Path, database_url: str
) -> None:
    """The pay page's CSP lets its form go to TUANBOX_WECHATPAY_H5_URL only (browsers apply
    form-action to the redirect after the POST), so an h5_url elsewhere is refused here."""
    cashier = wechat_settings(gateway, tmp_path / "certs", database_url=database_url)
    assert checkout_origins(cashier) == [gateway.url.lower()]
    assert checkout_origins(make_settings()) == ["http://127.0.0.1:8000"]  # SimPay
    elsewhere = wechat_settings(
        gateway,
        tmp_path / "certs",
        database_url=database_url,
        wechatpay_h5_url="https://wx.tenpay.com",
    )
    with pytest.raises(ProviderError, match="not on TUANBOX_WECHATPAY_H5_URL"):
        _intent(db_session, elsewhere)


def test_requests_with_the_wrong_merchant_key_are_refused_by_the_gateway(
    db_session: Session, gateway: FakeWeChatPay, tmp_path: Path, database_url: str
) -> None:
    impostor = Party("impostor")
    settings = wechat_settings(
        gateway,
        tmp_path / "certs",
        database_url=database_url,
        wechatpay_private_key=impostor.key_pem,
    )
    with pytest.raises(ProviderError):
        _intent(db_session, settings)
    assert gateway.requests[-1][2] == 401


def test_abnormal_refund_notification_alerts_ops_once(
    client: TestClient, db_session: Session, settings: Settings, gateway: FakeWeChatPay
) -> None:
    order = _paid(db_session, settings, gateway, client)
    owed = refund(db_session, order, 2590, "group failed", key=f"group-failed:{order.id}")
    assert process_refund(db_session, owed.id, get_provider("wechat", settings)) == "succeeded"
    body, headers = gateway.refund_done(owed.id, status="ABNORMAL")
    assert client.post(URL, content=body, headers=headers).json() == {"status": "alerted"}
    body, headers = gateway.refund_done(owed.id, status="ABNORMAL")
    assert client.post(URL, content=body, headers=headers).json() == {"status": "alerted"}
    alerts = db_session.scalars(
        sa.select(OpsAlert).where(OpsAlert.order_id == order.id, OpsAlert.kind == "refund_abnormal")
    ).all()
    assert len(alerts) == 1 and alerts[0].severity == "critical"


def test_adapter_is_one_per_configuration(settings: Settings) -> None:
    assert get_provider("wechat", settings) is get_provider("wechat", settings)
    assert isinstance(get_provider("wechat", settings), WeChatPayProvider)
