"""The payment provider port and the events a provider's webhooks are turned into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from tuanbox.payments.errors import UnknownProviderError
from tuanbox.settings import Settings


@dataclass(frozen=True)
class WebhookEvent:
    """A verified provider notification in our own terms."""

    type: str  # payment.succeeded | payment.failed | refund.succeeded | refund.failed
    provider: str
    intent_id: str | None = None
    txn_id: str | None = None
    amount_cents: int = 0
    refund_id: str | None = None  # ours, echoed back by the provider
    provider_refund_id: str | None = None
    # The payment account that paid (WeChat's openid), for risk control: never shown, hashed.
    payer_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


class PaymentProvider(Protocol):
    name: str

    def create_checkout(
        self, session: Session, intent_id: str, amount_cents: int, *, payer_ip: str | None = None
    ) -> str:
        """Where to send the shopper to pay (a hosted payment page).

        Called again for a reused intent, so it must be idempotent per intent id. `payer_ip` is
        the shopper's address, which some gateways require (WeChat H5).
        """
        ...

    def refund(self, session: Session, *, refund_id: str, intent_id: str, amount_cents: int) -> str:
        """Refund money; `refund_id` is the idempotency key. Returns the provider's refund id.

        Raises ProviderError when the provider fails; calling again with the same refund id
        must never move money twice.
        """
        ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Check the signature and parse, or raise WebhookSignatureError / WebhookPayloadError."""
        ...


def get_provider(name: str, settings: Settings) -> PaymentProvider:
    """The adapter of an enabled provider (TUANBOX_PAYMENT_PROVIDERS); any other is unknown."""
    if name not in settings.payment_providers:
        raise UnknownProviderError(f"no payment provider named {name!r}")
    if name == "sim" and settings.simpay_enabled:
        from tuanbox.payments.simpay import SimPay

        return SimPay(settings)
    if name == "wechat":
        from tuanbox.payments.wechatpay import wechatpay_for

        return wechatpay_for(settings)
    raise UnknownProviderError(f"no payment provider named {name!r}")


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as a browser compares origins."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def checkout_origins(settings: Settings) -> list[str]:
    """Where a pay form may send the shopper: each enabled provider's hosted checkout.

    Pages holding a pay form add these to their CSP's form-action, since browsers apply it to
    the redirect that follows the POST as well (Chromium does)."""
    origins: list[str] = []
    if settings.simpay_enabled:
        origins.append(origin_of(settings.public_base_url))
    if "wechat" in settings.payment_providers:
        origins.append(origin_of(settings.wechatpay_h5_url))
    return origins
