"""Coupon errors; each code is what the problem body's `code` says.

ConflictError 409
├── CouponUnavailableError      COUPON_UNAVAILABLE      (used by another order, not yours)
├── CouponExpiredError          COUPON_EXPIRED          (or not yet valid)
├── CouponNotApplicableError    COUPON_NOT_APPLICABLE   (merchant, threshold, audience, kind)
├── CouponLimitReachedError     COUPON_LIMIT_REACHED    (per-user or total limit)
├── StackingRefusedError        STACKING_REFUSED
├── CouponKeyConflictError      COUPON_KEY_CONFLICT     (a key reused for something else)
└── DiscountLockedError         DISCOUNT_LOCKED         (the order is paid or not pending)
NotFoundError 404
└── TemplateNotFoundError       COUPON_TEMPLATE_NOT_FOUND
InvalidInputError 422
└── InvalidTemplateError        INVALID_COUPON_TEMPLATE
"""

from __future__ import annotations

from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError


class CouponUnavailableError(ConflictError):
    code = "COUPON_UNAVAILABLE"
    title = "Coupon not available"


class CouponExpiredError(ConflictError):
    code = "COUPON_EXPIRED"
    title = "Coupon expired or not yet valid"


class CouponNotApplicableError(ConflictError):
    code = "COUPON_NOT_APPLICABLE"
    title = "Coupon does not apply to this order"


class CouponLimitReachedError(ConflictError):
    code = "COUPON_LIMIT_REACHED"
    title = "Coupon limit reached"


class StackingRefusedError(ConflictError):
    code = "STACKING_REFUSED"
    title = "These discounts cannot be combined"


class CouponKeyConflictError(ConflictError):
    code = "COUPON_KEY_CONFLICT"
    title = "Issuance key already used"


class DiscountLockedError(ConflictError):
    code = "DISCOUNT_LOCKED"
    title = "The order's discount can no longer change"


class TemplateNotFoundError(NotFoundError):
    code = "COUPON_TEMPLATE_NOT_FOUND"


class InvalidTemplateError(InvalidInputError):
    code = "INVALID_COUPON_TEMPLATE"
