"""Review errors.

ReviewError
├── NotReviewableError     409 NOT_REVIEWABLE     (not picked up yet, or not yours)
├── AlreadyReviewedError   409 ALREADY_REVIEWED   (one review per order)
└── InvalidReviewError     422 INVALID_REVIEW     (rating outside 1–5, text too long)
"""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError


class NotReviewableError(ConflictError):
    code = "NOT_REVIEWABLE"
    title = "Not reviewable"


class AlreadyReviewedError(ConflictError):
    code = "ALREADY_REVIEWED"
    title = "Already reviewed"


class InvalidReviewError(InvalidInputError):
    code = "INVALID_REVIEW"
    title = "Invalid review"
