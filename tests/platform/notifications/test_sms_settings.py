"""Production texts through the gateway: without its configuration the settings refuse to load,
and the development inbox is refused there even past the validator."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.protocol.token import generate_keypair, private_key_to_b64
from tests.conftest import make_settings
from tests.platform.notifications.fake_sms_gateway import KEY_ID, SECRET, SIGN_NAME, TEMPLATES
from tuanbox.notifications.services import (
    GatewayNotifier,
    GatewaySmsSender,
    InboxNotifier,
    InboxSmsSender,
    get_notifier,
    get_sms_sender,
)
from tuanbox.settings import Settings

# A production configuration that other checks accept, so the SMS checks are what is tested.
PRODUCTION: dict[str, object] = {
    "env": "production",
    "public_base_url": "https://tuanbox.example",
    "secret_key": "s" * 40,
    "pii_key": "p" * 40,
    "payment_webhook_secret": "w" * 40,
    "payment_providers": "wechat",
    "wechatpay_mchid": "1900000109",
    "wechatpay_appid": "wxd678efh567hg6787",
    "wechatpay_merchant_serial_no": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
    "wechatpay_private_key": "-----BEGIN PRIVATE KEY-----\n…\n-----END PRIVATE KEY-----",
    "wechatpay_apiv3_key": "a" * 32,
}
GATEWAY: dict[str, object] = {
    "sms_gateway_url": "https://dysmsapi.aliyuncs.com/",
    "sms_access_key_id": KEY_ID,
    "sms_access_key_secret": SECRET,
    "sms_sign_name": SIGN_NAME,
    "sms_templates": TEMPLATES,
}


def production(**overrides: object) -> Settings:
    values = {**PRODUCTION, "pickup_signing_key": private_key_to_b64(generate_keypair()[0])}
    return make_settings(**{**values, **overrides})


def test_production_without_gateway_configuration_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="the SMS gateway needs TUANBOX_SMS_GATEWAY_URL"):
        production()


def test_production_names_each_missing_gateway_setting() -> None:
    partial = {**GATEWAY, "sms_access_key_secret": None, "sms_templates": {"otp": "SMS_1"}}
    with pytest.raises(ValidationError) as caught:
        production(**partial)
    message = str(caught.value)
    assert "TUANBOX_SMS_ACCESS_KEY_SECRET" in message
    assert "TUANBOX_SMS_TEMPLATES['pickup_ready']" in message
    assert "TUANBOX_SMS_GATEWAY_URL" not in message


def test_production_refuses_the_inbox() -> None:
    with pytest.raises(ValidationError, match="TUANBOX_SMS_BACKEND=inbox"):
        production(**GATEWAY, sms_backend="inbox")


def test_production_refuses_a_plain_http_gateway() -> None:
    with pytest.raises(ValidationError, match="must be https"):
        production(**{**GATEWAY, "sms_gateway_url": "http://sms.internal/"})


def test_production_defaults_to_the_gateway() -> None:
    settings = production(**GATEWAY)
    assert settings.sms_backend == "gateway"
    assert isinstance(get_sms_sender(settings), GatewaySmsSender)
    assert isinstance(get_notifier(settings), GatewayNotifier)


def test_development_and_test_default_to_the_inbox() -> None:
    for env in ("development", "test"):
        settings = make_settings(env=env)
        assert settings.sms_backend == "inbox"
        assert isinstance(get_sms_sender(settings), InboxSmsSender)
        assert isinstance(get_notifier(settings), InboxNotifier)


def test_choosing_the_gateway_outside_production_needs_its_configuration() -> None:
    with pytest.raises(ValidationError, match="the SMS gateway needs"):
        make_settings(sms_backend="gateway")


def test_the_inbox_adapters_refuse_production_settings_that_skipped_validation() -> None:
    unchecked = Settings.model_construct(env="production", sms_backend="inbox")
    with pytest.raises(ValueError, match="refused in production"):
        InboxSmsSender(unchecked)
    with pytest.raises(ValueError, match="refused in production"):
        InboxNotifier(unchecked)
