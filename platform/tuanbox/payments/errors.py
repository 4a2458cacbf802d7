"""Payment errors: bad webhook signatures, provider failures, refunds and their resolution."""

from __future__ import annotations

from tuanbox.errors import (
    AuthenticationError,
    ConflictError,
    DependencyUnavailableError,
    InvalidInputError,
    NotFoundError,
)


class WebhookSignatureError(AuthenticationError):
    code = "WEBHOOK_SIGNATURE_INVALID"


class WebhookPayloadError(InvalidInputError):
    code = "WEBHOOK_PAYLOAD_INVALID"


class ProviderError(DependencyUnavailableError):
    """The provider refused or failed a call; refunds retry on this."""

    code = "PAYMENT_PROVIDER_ERROR"


class UnknownProviderError(NotFoundError):
    code = "UNKNOWN_PAYMENT_PROVIDER"


class UnknownIntentError(NotFoundError):
    code = "UNKNOWN_PAYMENT_INTENT"


class NotPayableError(ConflictError):
    code = "ORDER_NOT_PAYABLE"


class RefundExceedsPaidError(ConflictError):
    code = "REFUND_EXCEEDS_PAID"


class RefundKeyConflictError(ConflictError):
    code = "REFUND_KEY_CONFLICT"


class RefundNotFoundError(NotFoundError):
    code = "REFUND_NOT_FOUND"


class RefundStateError(ConflictError):
    """Only a refund that failed for good can be retried or resolved by hand."""

    code = "REFUND_NOT_FAILED"
