"""Account errors: bad, expired or revoked codes and tokens, locked codes, wrong credentials."""

from __future__ import annotations

from tuanbox.errors import AuthenticationError, ConflictError, InvalidInputError, RateLimitedError


class InvalidCredentialsError(AuthenticationError):
    code = "INVALID_CREDENTIALS"


class OtpInvalidError(AuthenticationError):
    code = "OTP_INVALID"


class ErasureCodeInvalidError(InvalidInputError):
    """The code sent with an erasure is not the phone's live erasure code (wrong, expired,
    spent, or a sign-in code): the account stays."""

    code = "ERASURE_CODE_INVALID"


class OtpLockedError(RateLimitedError):
    """Too many wrong codes: the code is dead, ask for a new one (after the retry time)."""

    code = "OTP_LOCKED"


class TokenInvalidError(AuthenticationError):
    code = "TOKEN_INVALID"


class TokenRevokedError(AuthenticationError):
    """The account was disabled after this access token was issued."""

    code = "TOKEN_REVOKED"


class TokenReusedError(AuthenticationError):
    """A refresh token was used twice: its whole family is revoked (likely stolen)."""

    code = "REFRESH_TOKEN_REUSED"


class InvalidPhoneError(InvalidInputError):
    code = "INVALID_PHONE"


class SelfDisableError(ConflictError):
    """An admin may not disable their own account (the last admin would lock everyone out)."""

    code = "CANNOT_DISABLE_SELF"


class AccountErasedError(ConflictError):
    """The shopper erased this account: it holds no personal data and never comes back."""

    code = "ACCOUNT_ERASED"
