"""Order errors."""

from __future__ import annotations

from tuanbox.errors import ConflictError, NotFoundError


class IllegalTransitionError(ConflictError):
    code = "ILLEGAL_TRANSITION"
    title = "Illegal order transition"


class OrderNotFoundError(NotFoundError):
    code = "ORDER_NOT_FOUND"
