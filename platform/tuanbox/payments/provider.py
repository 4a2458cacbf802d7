"""The payment provider port and the events a provider's webhooks are turned into."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

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
