"""Notification errors: what went wrong handing a text to the SMS gateway.

    SmsError                    503 SMS_UNAVAILABLE      no answer (timeouts, 5xx) after the
    │                                                    last retry
    ├── SmsGatewayRefusedError  503 SMS_GATEWAY_REFUSED  our request was refused (signature,
    │                                                    template, sign name)
    ├── SmsNumberRejectedError  422 SMS_NUMBER_REJECTED  the gateway will not text this number
    ├── SmsRateLimitedError     429 SMS_RATE_LIMITED     the gateway's per-number limit
    └── SmsOutcomeUnknownError  503 SMS_OUTCOME_UNKNOWN  a text sent at most once got no answer
                                                         after its request went out: it may
                                                         have been sent, so it is not repeated

SmsError is a DependencyUnavailableError; the 422 and 429 ones are also InvalidInputError and
RateLimitedError (so they get a Retry-After header). Details name at most the gateway's own
error code: never the phone number or the message.
"""

from __future__ import annotations

from tuanbox.errors import DependencyUnavailableError, InvalidInputError, RateLimitedError


class SmsError(DependencyUnavailableError):
    code = "SMS_UNAVAILABLE"
    title = "Text messages cannot be sent right now"


class SmsGatewayRefusedError(SmsError):
    code = "SMS_GATEWAY_REFUSED"


class SmsNumberRejectedError(SmsError, InvalidInputError):
    code = "SMS_NUMBER_REJECTED"
    status = 422
    title = "This number cannot receive text messages"


class SmsRateLimitedError(SmsError, RateLimitedError):
    """Carries retry_after (seconds), answered as a Retry-After header."""

    code = "SMS_RATE_LIMITED"
    status = 429
    title = "Too many text messages to this number"


class SmsOutcomeUnknownError(SmsError):
    """A text that must go out at most once (an outbox row) may have reached the gateway: the
    request was written and no answer came back (read timeout, reset). Not retried."""

    code = "SMS_OUTCOME_UNKNOWN"
