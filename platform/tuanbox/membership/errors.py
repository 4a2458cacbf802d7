"""Membership errors; each code is what the problem body's `code` says.

ConflictError 409
├── NotAMemberError            NOT_A_MEMBER            (nothing to refund)
└── MembershipPaymentError     MEMBERSHIP_PAYMENT      (amount or provider does not match)
NotFoundError 404
└── TermNotFoundError          MEMBERSHIP_TERM_NOT_FOUND
"""

from __future__ import annotations

from tuanbox.errors import ConflictError, NotFoundError


class NotAMemberError(ConflictError):
    code = "NOT_A_MEMBER"
    title = "Not a member"


class MembershipPaymentError(ConflictError):
    code = "MEMBERSHIP_PAYMENT"
    title = "Membership payment does not match"


class TermNotFoundError(NotFoundError):
    code = "MEMBERSHIP_TERM_NOT_FOUND"
    title = "Membership term not found"
