"""WeChat Pay API v3 adapter (provider `wechat`): H5 checkout, signed notifications, refunds.

Built on the maintained `wechatpayv3` package, which signs our requests
(`Authorization: WECHATPAY2-SHA256-RSA2048 …` with the merchant key), verifies every
response and notification with WeChat Pay's platform certificate (downloaded from
`/v3/certificates`, AES-256-GCM encrypted under the APIv3 key) or platform public key, and
decrypts notification resources. Checkout is H5 (`/v3/pay/transactions/h5`): our pages are
opened in a phone's browser, and H5 hands the shopper to the WeChat app to pay; JSAPI would
need the shopper's openid from a WeChat official-account sign-in, which we do not have.

Our ids go over the wire unchanged in meaning: `out_trade_no` is the payment intent's UUID
without hyphens (WeChat allows 32 characters), `out_refund_no` is our refund id, so a retried
refund is the same refund at WeChat and can never pay twice.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import requests
from sqlalchemy.orm import Session
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core
from wechatpayv3.utils import aes_decrypt

from tuanbox.orders.models import Order
from tuanbox.payments.errors import ProviderError, WebhookPayloadError, WebhookSignatureError
from tuanbox.payments.models import PaymentIntent
from tuanbox.payments.provider import WebhookEvent, origin_of
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.payments.wechatpay")

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TOLERANCE_S = 300  # WeChat's advice: refuse notifications signed more than 5 minutes off
# An unknown certificate serial makes the SDK download certificates again; anyone can send
# one, so downloads are spaced out.
CERT_REFRESH_MIN_S = 60.0
_SERIAL = re.compile(r"^[0-9A-Za-z_]{1,64}$")
_HEX = re.compile(r"^[0-9A-Fa-f]{1,64}$")
_OPENID = re.compile(r"^[0-9A-Za-z_-]{1,128}$")
_MAX_CENTS = 2**31 - 1

T = TypeVar("T")


def out_trade_no(intent_id: str) -> str:
    return uuid.UUID(intent_id).hex


def intent_id_of(trade_no: str) -> str:
    return str(uuid.UUID(hex=trade_no))


class _Core(Core):
    """wechatpayv3's Core talking to the configured gateway, and careful with certificates.

    Core has no gateway option (it assigns WeChat's host in its constructor); this subclass
    makes that attribute read the configured one, which is how tests reach a local gateway.
    """

    def __init__(self, *, gateway: str, **kwargs: Any) -> None:
        self._gateway = gateway.rstrip("/")
        self._refreshed_at = -CERT_REFRESH_MIN_S
        self._refresh_lock = threading.Lock()
        super().__init__(**kwargs)

    @property
    def _gate_way(self) -> str:
        return self._gateway

    @_gate_way.setter
    def _gate_way(self, _hard_coded: str) -> None:
        """Core's constructor assigns WeChat's fixed host here; the configured gateway stays."""

    def _update_certificates(self) -> None:
        # Spaced out, and a failed download never leaves us with no certificate at all
        # (Core clears its list before downloading).
        with self._refresh_lock:
            now = time.monotonic()
            if self._certificates and now - self._refreshed_at < CERT_REFRESH_MIN_S:
                return
            self._refreshed_at = now
            kept = list(self._certificates)
            try:
                super()._update_certificates()
            finally:
                if not self._certificates:
                    self._certificates.extend(kept)

    def verify(self, headers: Mapping[str, str], body: str) -> bool:
        """Signature check of a notification with the platform certificate (or public key)."""
        return bool(self._verify_signature(headers, body))


class _Client(WeChatPay):
    """The SDK's API methods (pay, refund, query_refund) over our Core.

    WeChatPay's constructor would build a Core against WeChat's fixed host and download
    certificates from it at once; these are the attributes its methods read.
    """

    def __init__(self, core: _Core, *, mchid: str, appid: str, notify_url: str) -> None:
        self._type = WeChatPayType.H5
        self._mchid = mchid
        self._appid = appid
        self._notify_url = notify_url
        self._core = core
        self._partner_mode = False


def _private_key(settings: Settings) -> str:
    if settings.wechatpay_private_key is not None:
        return settings.wechatpay_private_key.get_secret_value()
    assert settings.wechatpay_private_key_file  # the settings validator requires one of them
    return Path(settings.wechatpay_private_key_file).read_text(encoding="utf-8")


def _message(text: object) -> str:
    """WeChat's error body is `{"code": …, "message": …}`; keep the log line short."""
    try:
        doc = json.loads(text) if isinstance(text, str | bytes) else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict) and "code" in doc:
        return f"{doc.get('code')}: {str(doc.get('message', ''))[:200]}"
    return str(text)[:200]


def _rfc3339(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.isoformat(timespec="seconds")


class WeChatPayProvider:
    """The PaymentProvider port over WeChat Pay API v3; one per process and configuration."""

    name = "wechat"

    def __init__(self, settings: Settings) -> None:
        assert settings.wechatpay_apiv3_key is not None  # checked by the settings validator
        self._settings = settings
        self._mchid = settings.wechatpay_mchid or ""
        self._appid = settings.wechatpay_appid or ""
        self._apiv3_key = settings.wechatpay_apiv3_key.get_secret_value()
        self._lock = threading.Lock()
        self._client: _Client | None = None

    # -- the SDK, built on first use (building downloads the platform certificates) --------
    def _api(self) -> _Client:
        with self._lock:
            if self._client is None:
                s = self._settings
                cert_dir = s.wechatpay_platform_cert_dir
                if cert_dir:
                    Path(cert_dir).mkdir(parents=True, exist_ok=True)
                core = _Core(
                    gateway=s.wechatpay_gateway_url,
                    mchid=self._mchid,
                    cert_serial_no=s.wechatpay_merchant_serial_no,
                    private_key=_private_key(s),
                    apiv3_key=self._apiv3_key,
                    cert_dir=cert_dir,
                    logger=None,
                    timeout=(min(5.0, s.wechatpay_timeout_s), s.wechatpay_timeout_s),
                    public_key=s.wechatpay_platform_public_key,
                    public_key_id=s.wechatpay_platform_public_key_id,
                )
                self._client = _Client(
                    core,
                    mchid=self._mchid,
                    appid=self._appid,
                    notify_url=s.wechatpay_notify_url_resolved,
                )
            return self._client

    def _call(self, what: str, fn: Callable[[_Client], T]) -> T:
        """Run an SDK call; whatever goes wrong on the way to WeChat is a ProviderError."""
        try:
            return fn(self._api())
        except requests.RequestException as exc:
            raise ProviderError(f"WeChat Pay unreachable ({what}): {exc}") from exc
        except Exception as exc:
            # wechatpayv3 raises bare Exception for its own failures: a response whose
            # signature does not verify, no usable platform certificate, a bad key.
            raise ProviderError(f"WeChat Pay {what} failed: {exc}") from exc

    # -- the port ----------------------------------------------------------------------------
    def create_checkout(
        self, session: Session, intent_id: str, amount_cents: int, *, payer_ip: str | None = None
    ) -> str:
        intent = session.get(PaymentIntent, intent_id)
        order = session.get(Order, intent.order_id) if intent is not None else None
        if order is None:
            raise ProviderError(f"no order behind payment intent {intent_id}")
        params: dict[str, Any] = {
            "description": f"Tuanbox order {order.id[:8]}",
            "out_trade_no": out_trade_no(intent_id),
            "amount": {"total": amount_cents, "currency": "CNY"},
            # WeChat checks that the H5 page is opened from the address that ordered it.
            "scene_info": {"payer_client_ip": payer_ip or "127.0.0.1", "h5_info": {"type": "Wap"}},
            "pay_type": WeChatPayType.H5,
        }
        if order.pay_deadline is not None:
            params["time_expire"] = _rfc3339(order.pay_deadline)
        code, text = self._call("checkout", lambda api: api.pay(**params))
        if code != 200:
            raise ProviderError(f"WeChat Pay refused the order ({code} {_message(text)})")
        try:
            url = str(json.loads(text)["h5_url"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("WeChat Pay answered an order without h5_url") from exc
        if len(url) > 500 or not url.startswith(("https://", "http://")):
            raise ProviderError("WeChat Pay answered an unusable h5_url")
        if origin_of(url) != origin_of(self._settings.wechatpay_h5_url):
            # The pay page's CSP lets the form go to the configured cashier only; a browser
            # would refuse this one, so say why here instead.
            raise ProviderError(
                f"WeChat Pay's h5_url is not on TUANBOX_WECHATPAY_H5_URL "
                f"({origin_of(self._settings.wechatpay_h5_url)})"
            )
        return url

    def refund(self, session: Session, *, refund_id: str, intent_id: str, amount_cents: int) -> str:
        intent = session.get(PaymentIntent, intent_id) if intent_id else None
        if intent is None:
            raise ProviderError(f"refund {refund_id}: no WeChat Pay payment to refund")
        code, text = self._call(
            "refund",
            lambda api: api.refund(
                out_refund_no=refund_id,
                out_trade_no=out_trade_no(intent.id),
                amount={"refund": amount_cents, "total": intent.amount_cents, "currency": "CNY"},
            ),
        )
        if code != 200:
            raise ProviderError(f"WeChat Pay refused refund {refund_id} ({code} {_message(text)})")
        try:
            doc = json.loads(text)
            status, wechat_refund_id = str(doc["status"]), str(doc["refund_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(f"WeChat Pay answered refund {refund_id} oddly") from exc
        # PROCESSING is WeChat's usual answer: the money is committed and reaches the
        # shopper within days; the REFUND.* notification tells how it ended.
        if status not in ("SUCCESS", "PROCESSING"):
            raise ProviderError(f"WeChat Pay refund {refund_id} is {status}")
        return wechat_refund_id[:100]

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        text = self._verified_text(headers, body)
        data, doc = self._decrypted(text)
        try:
            return self._event(doc, data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookPayloadError(f"notification not understood: {exc}") from exc

    # -- notifications -------------------------------------------------------------------------
    def _verified_text(self, headers: Mapping[str, str], body: bytes) -> str:
        h = {k.lower(): v for k, v in headers.items()}
        names = (
            "wechatpay-signature",
            "wechatpay-timestamp",
            "wechatpay-nonce",
            "wechatpay-serial",
        )
        signature, timestamp, nonce, serial = (h.get(name, "") for name in names)
        if not (signature and timestamp and nonce and serial):
            raise WebhookSignatureError("missing Wechatpay-* signature headers")
        if h.get("wechatpay-signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise WebhookSignatureError("unsupported Wechatpay-Signature-Type")
        # A certificate serial is hex (the SDK parses it so); a public key id is not.
        if serial != self._settings.wechatpay_platform_public_key_id and not _HEX.match(serial):
            raise WebhookSignatureError("malformed Wechatpay-Serial")
        if len(nonce) > 64 or len(signature) > 1024:
            raise WebhookSignatureError("malformed Wechatpay-* headers")
        try:
            sent = int(timestamp)
            text = body.decode("utf-8")
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookSignatureError("malformed notification") from exc
        if abs(time.time() - sent) > TOLERANCE_S:
            raise WebhookSignatureError("notification timestamp outside the tolerance (replay?)")
        normal = {
            "wechatpay-signature": signature,
            "wechatpay-timestamp": timestamp,
            "wechatpay-nonce": nonce,
            "wechatpay-serial": serial,
            "wechatpay-signature-type": SIGNATURE_TYPE,
        }
        if not self._call("notification check", lambda api: api._core.verify(normal, text)):
            raise WebhookSignatureError("notification signature does not verify")
        return text

    def _decrypted(self, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            doc = json.loads(text)
            resource = doc["resource"]
            if doc.get("resource_type") != "encrypt-resource":
                raise ValueError("resource_type is not encrypt-resource")
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise ValueError("resource algorithm is not AEAD_AES_256_GCM")
            plain = aes_decrypt(
                nonce=str(resource["nonce"]),
                ciphertext=str(resource["ciphertext"]),
                associated_data=str(resource.get("associated_data") or ""),
                apiv3_key=self._apiv3_key,
            )
            if plain is None:
                raise ValueError("resource does not decrypt with the APIv3 key")
            data = json.loads(plain)
            if not isinstance(data, dict):
                raise TypeError("resource is not an object")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WebhookPayloadError(f"notification resource unusable: {exc}") from exc
        return data, doc

    def _event(self, doc: Mapping[str, Any], data: Mapping[str, Any]) -> WebhookEvent:
        if data.get("mchid", self._mchid) != self._mchid:
            raise ValueError("notification for another merchant")
        kind = str(doc.get("event_type", ""))
        raw = {"id": doc.get("id"), "event_type": kind, **data}
        if kind == "TRANSACTION.SUCCESS":
            if data.get("appid") != self._appid or data.get("trade_state") != "SUCCESS":
                raise ValueError("transaction for another app, or not successful")
            return WebhookEvent(
                type="payment.succeeded",
                provider=self.name,
                intent_id=intent_id_of(str(data["out_trade_no"])),
                txn_id=_bounded_id(data["transaction_id"]),
                amount_cents=_cents(data["amount"]["total"]),
                payer_id=_openid(data.get("payer")),
                raw=raw,
            )
        if kind.startswith("REFUND."):
            refund_id = str(uuid.UUID(str(data["out_refund_no"])))
            if kind == "REFUND.SUCCESS" and data.get("refund_status") == "SUCCESS":
                return WebhookEvent(
                    type="refund.succeeded",
                    provider=self.name,
                    intent_id=intent_id_of(str(data["out_trade_no"])),
                    refund_id=refund_id,
                    provider_refund_id=_bounded_id(data["refund_id"]),
                    amount_cents=_cents(data["amount"]["refund"]),
                    raw=raw,
                )
            if kind in ("REFUND.ABNORMAL", "REFUND.CLOSED"):
                return WebhookEvent(
                    type="refund.failed", provider=self.name, refund_id=refund_id, raw=raw
                )
        return WebhookEvent(type=kind.lower()[:50], provider=self.name, raw=raw)


def _bounded_id(value: object) -> str:
    text = str(value)
    if not _SERIAL.match(text):
        raise ValueError("id is not 1–64 letters, digits or _")
    return text


def _openid(payer: object) -> str | None:
    """The payer's openid (per app id), when it looks like one; risk control links accounts
    by it. An odd value is dropped rather than failing a payment that did succeed."""
    openid = payer.get("openid") if isinstance(payer, Mapping) else None
    return openid if isinstance(openid, str) and _OPENID.match(openid) else None


def _cents(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= _MAX_CENTS:
        raise ValueError("amount must be a positive integer of fen")
    return value


_providers: dict[tuple[Any, ...], WeChatPayProvider] = {}
_providers_lock = threading.Lock()


def wechatpay_for(settings: Settings) -> WeChatPayProvider:
    """One adapter per configuration in the process, so certificates are fetched once."""
    key = (
        settings.wechatpay_gateway_url,
        settings.wechatpay_h5_url,
        settings.wechatpay_mchid,
        settings.wechatpay_appid,
        settings.wechatpay_merchant_serial_no,
        settings.wechatpay_private_key,
        settings.wechatpay_private_key_file,
        settings.wechatpay_apiv3_key,
        settings.wechatpay_notify_url_resolved,
        settings.wechatpay_platform_cert_dir,
        settings.wechatpay_platform_public_key,
        settings.wechatpay_platform_public_key_id,
        settings.wechatpay_timeout_s,
    )
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = WeChatPayProvider(settings)
        return provider
