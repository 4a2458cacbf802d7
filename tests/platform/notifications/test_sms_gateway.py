"""The SMS gateway client against a local fake of the gateway: signing, retries, errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import make_settings
from tests.platform.notifications.fake_sms_gateway import (
    KEY_ID,
    SECRET,
    SIGN_NAME,
    TEMPLATES,
    FakeSmsGateway,
)
from tuanbox.notifications.errors import (
    SmsError,
    SmsGatewayRefusedError,
    SmsNumberRejectedError,
    SmsOutcomeUnknownError,
    SmsRateLimitedError,
)
from tuanbox.notifications.gateway import GatewayConfig, SmsGateway
from tuanbox.settings import Settings

PHONE = "+8613800138000"


def gateway_settings(url: str, **overrides: object) -> Settings:
    """Test-env settings that text through the gateway at `url`."""
    values: dict[str, object] = {
        "sms_backend": "gateway",
        "sms_gateway_url": url,
        "sms_access_key_id": KEY_ID,
        "sms_access_key_secret": SECRET,
        "sms_sign_name": SIGN_NAME,
        "sms_templates": TEMPLATES,
        "sms_timeout_s": 0.5,
        "sms_retry_backoff_s": 0,
    }
    values.update(overrides)
    return make_settings(**values)


@pytest.fixture
def fake() -> Iterator[FakeSmsGateway]:
    with FakeSmsGateway() as gateway:
        yield gateway


def client_for(fake: FakeSmsGateway, **overrides: object) -> SmsGateway:
    return SmsGateway(GatewayConfig.from_settings(gateway_settings(fake.url, **overrides)))


def test_a_text_reaches_the_gateway_signed_with_its_template(fake: FakeSmsGateway) -> None:
    message_id = client_for(fake).send(PHONE, "otp", {"code": "042137", "ttl_s": "300"})
    assert fake.refusals == [] and fake.attempts == 1
    [got] = fake.received
    assert (got.phone, got.sign_name, got.template_code) == (PHONE, SIGN_NAME, "SMS_0001")
    assert got.params == {"code": "042137", "ttl_s": "300"}
    assert message_id == "000001^0"


def test_timeouts_and_5xx_are_retried_each_time_freshly_signed(fake: FakeSmsGateway) -> None:
    fake.hang, fake.fail_with = 1, [503]
    fake_order = client_for(fake, sms_timeout_s=0.3, sms_max_attempts=3)
    assert fake_order.send(PHONE, "otp", {"code": "1"}) == "000001^0"
    # hang (timeout), then 503, then accepted — a reused nonce would have been refused.
    assert fake.attempts == 3 and len(fake.received) == 1 and fake.refusals == []


def test_retries_are_bounded(fake: FakeSmsGateway) -> None:
    fake.fail_with = [502] * 10
    with pytest.raises(SmsError) as caught:
        client_for(fake, sms_max_attempts=3).send(PHONE, "otp", {"code": "1"})
    assert caught.value.code == "SMS_UNAVAILABLE" and caught.value.status == 503
    assert fake.attempts == 3 and fake.received == []


def test_an_unreachable_gateway_is_an_sms_error(fake: FakeSmsGateway) -> None:
    gateway = SmsGateway(
        GatewayConfig.from_settings(gateway_settings("http://127.0.0.1:9/", sms_max_attempts=2))
    )
    with pytest.raises(SmsError, match="after 2 attempts"):
        gateway.send(PHONE, "otp", {"code": "1"})


def test_a_wrong_secret_is_refused_and_not_retried(fake: FakeSmsGateway) -> None:
    with pytest.raises(SmsGatewayRefusedError) as caught:
        client_for(fake, sms_access_key_secret="not-the-secret").send(PHONE, "otp", {"code": "1"})
    assert "SignatureDoesNotMatch" in caught.value.detail
    assert fake.attempts == 1 and fake.refusals == ["SignatureDoesNotMatch"]


@pytest.mark.parametrize(
    ("gateway_code", "error", "status"),
    [
        ("isv.MOBILE_NUMBER_ILLEGAL", SmsNumberRejectedError, 422),
        ("isv.BUSINESS_LIMIT_CONTROL", SmsRateLimitedError, 429),
        ("isv.SMS_TEMPLATE_ILLEGAL", SmsGatewayRefusedError, 503),
    ],
)
def test_gateway_codes_become_our_errors_without_the_number(
    fake: FakeSmsGateway, gateway_code: str, error: type[SmsError], status: int
) -> None:
    fake.answer_code = gateway_code
    with pytest.raises(error) as caught:
        client_for(fake).send(PHONE, "otp", {"code": "1"})
    assert caught.value.status == status and fake.attempts == 1
    problem = caught.value.problem()
    assert PHONE not in str(problem) and "13800138000" not in str(problem)
    if isinstance(caught.value, SmsRateLimitedError):
        assert caught.value.retry_after == 60


def test_a_template_without_gateway_code_is_refused_before_any_request(
    fake: FakeSmsGateway,
) -> None:
    with pytest.raises(SmsGatewayRefusedError, match="pickup_reminder"):
        client_for(fake).send(PHONE, "pickup_reminder", {})
    assert fake.attempts == 0


def test_a_keyed_text_carries_its_key_as_out_id_and_the_gateway_does_not_dedupe(
    fake: FakeSmsGateway,
) -> None:
    """SendSms has no idempotency: a repeated OutId is a second text (as the real service);
    which is why a keyed text must not be repeated by us (see the next test and the outbox)."""
    gateway = client_for(fake)
    gateway.send(PHONE, "pickup_ready", {"fallback_code": "1"}, key="pickup_ready:o1:t1")
    gateway.send(PHONE, "pickup_ready", {"fallback_code": "1"}, key="pickup_ready:o1:t1")
    assert [r.out_id for r in fake.received] == ["pickup_ready:o1:t1"] * 2
    gateway.send(PHONE, "otp", {"code": "1"})
    assert fake.received[-1].out_id is None


def test_a_keyed_text_whose_answer_was_lost_is_not_repeated(fake: FakeSmsGateway) -> None:
    """The request went out and no answer came back: it may have been sent, so at most once
    means no second attempt (an unkeyed one retries, see above)."""
    fake.hang = 1
    gateway = client_for(fake, sms_timeout_s=0.3, sms_max_attempts=3)
    with pytest.raises(SmsOutcomeUnknownError) as caught:
        gateway.send(PHONE, "pickup_ready", {"fallback_code": "1"}, key="k")
    assert caught.value.code == "SMS_OUTCOME_UNKNOWN" and fake.attempts == 1


def test_a_keyed_text_is_retried_when_it_surely_did_not_leave(fake: FakeSmsGateway) -> None:
    """No connection, or a 5xx answer: nothing was sent, so another attempt is safe."""
    gateway = SmsGateway(
        GatewayConfig.from_settings(gateway_settings("http://127.0.0.1:9/", sms_max_attempts=2))
    )
    with pytest.raises(SmsError, match="after 2 attempts"):
        gateway.send(PHONE, "otp", {"code": "1"}, key="k")
    fake.fail_with = [503]
    assert client_for(fake, sms_max_attempts=2).send(PHONE, "otp", {"code": "1"}, key="k")
    assert fake.attempts == 2 and len(fake.received) == 1
