"""Growth errors; each code is what the problem body's `code` says.

ConflictError 409
├── ReferralRefusedError        REFERRAL_REFUSED        (self, loop, already bound; `reason`)
├── OfferAlreadyClaimedError    OFFER_ALREADY_CLAIMED   (this phone, device or payer had one)
└── GrowthKeyConflictError      GROWTH_KEY_CONFLICT
NotFoundError 404
├── TaskNotFoundError           GROWTH_TASK_NOT_FOUND
└── OfferNotFoundError          OFFER_NOT_FOUND
InvalidInputError 422
└── InvalidGrowthConfigError    INVALID_GROWTH_CONFIG
"""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError


class ReferralRefusedError(ConflictError):
    code = "REFERRAL_REFUSED"
    title = "Referral refused"


class OfferAlreadyClaimedError(ConflictError):
    code = "OFFER_ALREADY_CLAIMED"
    title = "New-user offer already claimed"


class GrowthKeyConflictError(ConflictError):
    code = "GROWTH_KEY_CONFLICT"
    title = "Key already used for something else"


class TaskNotFoundError(NotFoundError):
    code = "GROWTH_TASK_NOT_FOUND"
    title = "Task not found"


class OfferNotFoundError(NotFoundError):
    code = "OFFER_NOT_FOUND"
    title = "Offer not found"


class InvalidGrowthConfigError(InvalidInputError):
    code = "INVALID_GROWTH_CONFIG"
    title = "Invalid growth configuration"
