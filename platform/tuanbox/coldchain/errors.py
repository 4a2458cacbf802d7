"""Errors of the cold-chain features, each with a stable code (RFC 9457 via the platform)."""

from __future__ import annotations

from tuanbox.errors import ConflictError, NotFoundError


class HoldNotFoundError(NotFoundError):
    code = "HOLD_NOT_FOUND"


class HoldDecidedError(ConflictError):
    code = "HOLD_ALREADY_DECIDED"


class HoldsPendingError(ConflictError):
    code = "HOLDS_PENDING"
