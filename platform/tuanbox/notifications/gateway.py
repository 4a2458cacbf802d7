"""The SMS gateway client: Aliyun Dysms `SendSms` over HTTP, signed with ACS3-HMAC-SHA256.

One request per text: the approved template code, its parameters as a JSON string and the
approved sign name go in a form body (never in the URL, which proxies log); the body hash,
a nonce and the time are signed with the access key secret. The gateway answers JSON with a
`Code` (`OK` or an error code) and, on success, a `BizId` (the message id). Timeouts and 5xx
answers are retried a bounded number of times, each attempt freshly signed; every failure
becomes one of our `SmsError`s. Nothing here logs or raises the phone or the parameters.

SendSms has no idempotency key (Aliyun's SendSms reference: "does not support idempotence
... implement your own idempotence controls"): a request repeated after the gateway accepted
it is a second text. A text sent with a `key` (the outbox's unique key) therefore goes at most
once: the key travels as `OutId` (echoed in delivery receipts, so ops can match a text to its
row), and an attempt that may have reached the gateway (the request was written, then a read
timeout or a reset) is not repeated but raises `SmsOutcomeUnknownError`. Without a key (the
sign-in code, which the shopper can ask for again) every transport failure is retried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx

from tuanbox.notifications.errors import (
    SmsError,
    SmsGatewayRefusedError,
    SmsNumberRejectedError,
    SmsOutcomeUnknownError,
    SmsRateLimitedError,
)
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.notifications.gateway")

ALGORITHM = "ACS3-HMAC-SHA256"
ACTION = "SendSms"
API_VERSION = "2017-05-25"
FORM = "application/x-www-form-urlencoded"
# Gateway codes that are about the recipient, not about us.
NUMBER_REJECTED = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT"})
RATE_LIMITED = frozenset({"isv.BUSINESS_LIMIT_CONTROL", "isv.DAY_LIMIT_CONTROL"})
RATE_LIMIT_RETRY_AFTER_S = 60
# Transport failures that happen before the request can have reached the gateway; any other
# one (read timeout, reset, broken answer) may follow a text the gateway accepted.
NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.LocalProtocolError,
    httpx.UnsupportedProtocol,
)


@dataclass(frozen=True)
class GatewayConfig:
    """What the client needs, read once from the settings."""

    url: str
    access_key_id: str
    access_key_secret: str
    sign_name: str
    templates: Mapping[str, str]
    timeout_s: float
    max_attempts: int
    backoff_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        if (
            not settings.sms_gateway_url
            or not settings.sms_access_key_id
            or settings.sms_access_key_secret is None
            or not settings.sms_sign_name
        ):
            raise ValueError("the SMS gateway is not configured (TUANBOX_SMS_GATEWAY_URL, …)")
        return cls(
            url=settings.sms_gateway_url,
            access_key_id=settings.sms_access_key_id,
            access_key_secret=settings.sms_access_key_secret.get_secret_value(),
            sign_name=settings.sms_sign_name,
            templates=dict(settings.sms_templates),
            timeout_s=settings.sms_timeout_s,
            max_attempts=settings.sms_max_attempts,
            backoff_s=settings.sms_retry_backoff_s,
        )


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
) -> tuple[str, str]:
    """The canonical request of the ACS3 signature and its signed-header list.

    Signed headers: `host`, `content-type` and every `x-acs-*` one, lower-cased and sorted."""
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    names = sorted(k for k in lowered if k in ("host", "content-type") or k.startswith("x-acs-"))
    signed = ";".join(names)
    canonical_headers = "".join(f"{k}:{lowered[k]}\n" for k in names)
    body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method, path or "/", query, canonical_headers, signed, body_hash]), signed


def authorization(
    key_id: str, secret: str, method: str, url: httpx.URL, headers: Mapping[str, str], body: bytes
) -> str:
    canonical, signed = canonical_request(method, url.path, url.query.decode(), headers, body)
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{ALGORITHM} Credential={key_id},SignedHeaders={signed},Signature={signature}"


class SmsGateway:
    """Sends one templated text and returns the gateway's message id."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self._transport = transport
        self._sleep = sleep

    def template_code(self, template: str) -> str:
        code = self.config.templates.get(template)
        if not code:
            raise SmsGatewayRefusedError(
                f"no gateway template is configured for {template!r} (TUANBOX_SMS_TEMPLATES)"
            )
        return code

    def _signed(self, body: bytes) -> dict[str, str]:
        url = httpx.URL(self.config.url)
        headers = {
            "host": url.netloc.decode(),
            "content-type": FORM,
            "x-acs-action": ACTION,
            "x-acs-version": API_VERSION,
            "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        }
        headers["authorization"] = authorization(
            self.config.access_key_id, self.config.access_key_secret, "POST", url, headers, body
        )
        return headers

    def send(
        self, phone: str, template: str, params: Mapping[str, str], *, key: str | None = None
    ) -> str:
        """Text `phone` and return the gateway's message id.

        With `key` the text goes at most once: `key` is sent as `OutId` and an attempt that may
        have reached the gateway is not repeated (`SmsOutcomeUnknownError`)."""
        form = {
            "PhoneNumbers": phone,
            "SignName": self.config.sign_name,
            "TemplateCode": self.template_code(template),
            "TemplateParam": json.dumps(dict(params), ensure_ascii=False),
        }
        if key is not None:
            form["OutId"] = key
        body = urlencode(form).encode()
        attempts = self.config.max_attempts
        with httpx.Client(transport=self._transport, timeout=self.config.timeout_s) as client:
            for attempt in range(1, attempts + 1):
                if attempt > 1:
                    self._sleep(self.config.backoff_s * 2 ** (attempt - 2))
                try:
                    response = client.post(
                        self.config.url, content=body, headers=self._signed(body)
                    )
                except httpx.TransportError as exc:  # timeouts, refused connections, resets
                    reason = type(exc).__name__
                    if key is not None and not isinstance(exc, NOT_SENT):
                        log.warning(
                            "sms gateway outcome unknown, not repeated",
                            extra={"template": template, "attempt": attempt, "reason": reason},
                        )
                        raise SmsOutcomeUnknownError(
                            f"the SMS gateway may have sent the text ({reason}); not repeated"
                        ) from exc
                else:
                    if response.status_code < 500:
                        return self._answer(template, response)
                    reason = f"HTTP {response.status_code}"
                log.warning(
                    "sms gateway attempt failed",
                    extra={"template": template, "attempt": attempt, "reason": reason},
                )
        raise SmsError(f"the SMS gateway did not answer after {attempts} attempts ({reason})")

    def _answer(self, template: str, response: httpx.Response) -> str:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise SmsGatewayRefusedError(f"the SMS gateway answered HTTP {response.status_code}")
        code = str(data.get("Code") or f"HTTP_{response.status_code}")
        request_id = str(data.get("RequestId") or "")
        if response.status_code == 200 and code == "OK":
            return str(data.get("BizId") or request_id)
        # The gateway's free text may repeat the number: only its code and request id go on.
        log.warning(
            "sms gateway refused a message",
            extra={"template": template, "gateway_code": code, "request_id": request_id},
        )
        if code in NUMBER_REJECTED:
            raise SmsNumberRejectedError("the SMS gateway will not text this number")
        if code in RATE_LIMITED:
            raise SmsRateLimitedError(
                "too many texts to this number; try again later",
                retry_after=RATE_LIMIT_RETRY_AFTER_S,
            )
        raise SmsGatewayRefusedError(f"the SMS gateway refused the message ({code})")
