"""Risk control errors.

PermissionDeniedError
└── RiskBlockedError          403 RISK_BLOCKED    (the score reached the block threshold)
NotFoundError
└── ReviewNotFoundError       404 REVIEW_NOT_FOUND
ConflictError
└── ReviewDecidedError        409 REVIEW_ALREADY_DECIDED
"""

from __future__ import annotations

from tuanbox.errors import ConflictError, NotFoundError, PermissionDeniedError


class RiskBlockedError(PermissionDeniedError):
    code = "RISK_BLOCKED"
    title = "Refused by risk control"


class ReviewNotFoundError(NotFoundError):
    code = "REVIEW_NOT_FOUND"


class ReviewDecidedError(ConflictError):
    code = "REVIEW_ALREADY_DECIDED"
    title = "Review already decided"
