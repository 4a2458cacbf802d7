"""Data-protection errors."""

from __future__ import annotations

from tuanbox.errors import ConflictError


class OrdersInFlightError(ConflictError):
    """The account has orders still moving (paid, at a locker, being returned): it can be
    erased once they are done; the problem lists them (`orders`: id and status)."""

    code = "ORDERS_IN_FLIGHT"
