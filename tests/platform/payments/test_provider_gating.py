"""SimPay exists only in development and test: production refuses it and has none of its routes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.payments.fake_wechatpay import FakeWeChatPay
from tuanbox.api.app import create_app
from tuanbox.payments.errors import UnknownProviderError
from tuanbox.payments.provider import get_provider
from tuanbox.settings import Settings


@pytest.fixture(scope="module")
def gateway() -> Iterator[FakeWeChatPay]:
    with FakeWeChatPay().running() as fake:
        yield fake


def _production(gateway: FakeWeChatPay, tmp_path: Path, **overrides: object) -> Settings:
    """Production settings as an operator would write them, with generated secrets."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    values: dict[str, object] = {
        "env": "production",
        "secret_key": "S" * 48,
        "pii_key": "P" * 48,
        "payment_webhook_secret": "W" * 48,
        "pickup_signing_key": base64.b64encode(raw).decode(),
        "public_base_url": "https://tuanbox.example.cn",
        "sms_gateway_url": "https://dysmsapi.example.cn/",
        "sms_access_key_id": "LTAI-test",
        "sms_access_key_secret": "x" * 40,
        "sms_sign_name": "团盒",
        "sms_templates": {"otp": "SMS_1", "pickup_ready": "SMS_2", "erasure_code": "SMS_3"},
        "payment_providers": "wechat",
        "wechatpay_mchid": gateway.mchid,
        "wechatpay_appid": gateway.appid,
        "wechatpay_merchant_serial_no": gateway.merchant.serial,
        "wechatpay_private_key": gateway.merchant.key_pem,
        "wechatpay_apiv3_key": gateway.apiv3_key,
        "wechatpay_platform_cert_dir": str(tmp_path / "certs"),
    }
    values.update(overrides)
    return make_settings(**values)


def test_production_refuses_sim(gateway: FakeWeChatPay, tmp_path: Path) -> None:
    for providers in ("sim", "wechat,sim", ["sim"]):
        with pytest.raises(ValidationError, match="exists only in development and test"):
            _production(gateway, tmp_path, payment_providers=providers)
    with pytest.raises(ValidationError, match="TUANBOX_PAYMENT_PROVIDERS is required"):
        _production(gateway, tmp_path, payment_providers="")
    with pytest.raises(ValidationError, match="must be https in production"):
        _production(gateway, tmp_path, wechatpay_gateway_url=gateway.url)


def test_provider_settings_are_checked(gateway: FakeWeChatPay, tmp_path: Path) -> None:
    assert make_settings().payment_providers == ["sim"]
    assert make_settings().default_payment_provider == "sim"
    for bad in ("paypal", "sim,sim", "wechat\x00"):
        with pytest.raises(ValidationError, match="distinct providers"):
            make_settings(payment_providers=bad)
    with pytest.raises(ValidationError, match="wechat needs TUANBOX_WECHATPAY_MCHID"):
        make_settings(payment_providers="wechat")
    with pytest.raises(ValidationError, match="32 bytes"):
        _production(gateway, tmp_path, wechatpay_apiv3_key="short")
    settings = _production(gateway, tmp_path)
    assert (settings.default_payment_provider, settings.simpay_enabled) == ("wechat", False)
    assert settings.wechatpay_notify_url_resolved == (
        "https://tuanbox.example.cn/api/v1/payments/wechat/webhook"
    )


def test_production_app_has_no_simpay(
    gateway: FakeWeChatPay, tmp_path: Path, engine: Engine
) -> None:
    settings = _production(gateway, tmp_path)
    with pytest.raises(UnknownProviderError):
        get_provider("sim", settings)
    with TestClient(create_app(settings, engine=engine)) as client:
        r = client.post("/api/v1/payments/sim/webhook", content=b"{}")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "UNKNOWN_PAYMENT_PROVIDER"
        # No such routes at all: the router's own "no such payment" never answers.
        for method, path in (("GET", "/pay/sim/x"), ("POST", "/pay/sim/x/confirm")):
            r = client.request(method, path)
            assert r.status_code == 404 and r.json().get("code") != "UNKNOWN_PAYMENT_INTENT"
        # The real provider's webhook is there, and checks signatures.
        r = client.post("/api/v1/payments/wechat/webhook", content=b"{}")
        assert (r.status_code, r.json()["code"]) == (401, "WEBHOOK_SIGNATURE_INVALID")


def test_test_app_keeps_simpay(client: TestClient) -> None:
    for method, path in (("GET", "/pay/sim/x"), ("POST", "/pay/sim/x/confirm")):
        r = client.request(method, path)
        assert (r.status_code, r.json()["code"]) == (404, "UNKNOWN_PAYMENT_INTENT")
