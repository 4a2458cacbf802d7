"""Errors of fulfilment: allocation, pickup codes and alerts, each with a stable code."""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError


class AlertNotFoundError(NotFoundError):
    code = "ALERT_NOT_FOUND"


class AlertStateError(ConflictError):
    code = "ALERT_STATE"


class NotAllocatableError(InvalidInputError):
    """The order cannot go in any compartment (no station, or too big for the largest)."""

    code = "NOT_ALLOCATABLE"


class PickupNotReadyError(ConflictError):
    code = "PICKUP_NOT_READY"


class FulfilmentNotFoundError(NotFoundError):
    code = "FULFILMENT_NOT_FOUND"
