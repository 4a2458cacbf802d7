"""Return errors."""

from __future__ import annotations

from tuanbox.errors import ConflictError, NotFoundError


class NotReturnableError(ConflictError):
    code = "NOT_RETURNABLE"


class ReturnWindowClosedError(ConflictError):
    code = "RETURN_WINDOW_CLOSED"


class ReturnStateError(ConflictError):
    code = "RETURN_STATE"


class ReturnNotFoundError(NotFoundError):
    code = "RETURN_NOT_FOUND"
