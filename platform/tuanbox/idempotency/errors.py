"""Idempotency errors."""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError


class IdempotencyKeyReusedError(InvalidInputError):
    """The key was first used with a different request body or endpoint."""

    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgressError(ConflictError):
    """The first request with this key is still running; retry shortly."""

    code = "IDEMPOTENCY_IN_PROGRESS"
