"""Points errors."""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError


class InsufficientPointsError(ConflictError):
    code = "POINTS_INSUFFICIENT"
    title = "Not enough points"


class PointsOverLimitError(InvalidInputError):
    code = "POINTS_OVER_LIMIT"
    title = "Too many points for this order"
