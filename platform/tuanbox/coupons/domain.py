"""Coupon rules, pure: what a template takes off an amount, stacking, and the cent-exact split.

Nothing here touches the database: services pass plain values in and store what comes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class CouponKind(StrEnum):
    AMOUNT_OFF = "amount_off"  # `amount_off_cents` off (with or without a threshold)
    PERCENT_OFF = "percent_off"  # `percent_off` % off, at most `max_off_cents`


class Audience(StrEnum):
    ALL = "all"
    NEW_USER = "new_user"  # shoppers who have never paid for an order
    WAKE_UP = "wake_up"  # shoppers whose last paid order is older than the dormant window


class CouponStatus(StrEnum):
    AVAILABLE = "available"
    USED = "used"  # held by an order (pending or paid)
    EXPIRED = "expired"  # came back from a refunded order after its validity ended


def aware(value: datetime) -> datetime:
    """A stored instant in UTC (SQLite hands back naive datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True)
class Terms:
    """What a coupon promises: enough of its template to price and check it."""

    kind: CouponKind
    amount_off_cents: int
    percent_off: int
    max_off_cents: int | None
    threshold_cents: int
    stackable: bool
    merchant_id: str | None
    valid_from: datetime
    valid_until: datetime


def discount_on(terms: Terms, amount_cents: int) -> int:
    """What these terms take off `amount_cents` (never more than the amount itself)."""
    if terms.kind is CouponKind.AMOUNT_OFF:
        off = terms.amount_off_cents
    else:
        # Integer arithmetic only: floor of amount * percent / 100.
        off = amount_cents * terms.percent_off // 100
        if terms.max_off_cents is not None:
            off = min(off, terms.max_off_cents)
    return max(0, min(off, amount_cents))


def refusal(terms: Terms, *, total_cents: int, merchant_id: str, now: datetime) -> str | None:
    """Why these terms do not apply to an order (a stable code), or None when they do."""
    if now < terms.valid_from or now >= terms.valid_until:
        return "COUPON_EXPIRED" if now >= terms.valid_until else "COUPON_NOT_YET_VALID"
    if terms.merchant_id is not None and terms.merchant_id != merchant_id:
        return "COUPON_NOT_APPLICABLE"
    if total_cents < terms.threshold_cents:
        return "COUPON_THRESHOLD_NOT_MET"
    return None


def stacking_refusal(stackable: Sequence[bool], *, with_points: bool) -> str | None:
    """A coupon that does not stack goes alone: no other coupon, no points off."""
    if len(stackable) > 1 and not all(stackable):
        return "STACKING_REFUSED"
    if with_points and stackable and not all(stackable):
        return "STACKING_REFUSED"
    return None


def combined_discount(terms: Sequence[Terms], total_cents: int) -> list[int]:
    """Each coupon's cents off, applied in turn to what is left to pay.

    At least one cent is always left to pay (a payment provider cannot take nothing)."""
    left = max(0, total_cents - 1)
    offs: list[int] = []
    for one in terms:
        off = min(discount_on(one, total_cents - sum(offs)), left)
        offs.append(off)
        left -= off
    return offs


def split(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split over lines in proportion to `weights`, in whole cents that add up exactly.

    Largest remainder (Hamilton): each line gets the floor of its exact share, and the cents
    left go one each to the lines with the largest remainders (earlier lines win ties). A
    line never gets more than its weight when `total` does not exceed the sum of weights.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("split takes non-negative amounts")
    whole = sum(weights)
    if whole == 0:
        if total:
            raise ValueError("cannot split a positive total over nothing")
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    left = total - sum(shares)
    for index in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:left]:
        shares[index] += 1
    return shares


def proportional(part: int, of: int, amount: int) -> int:
    """floor(amount * part / of): the cumulative share of `amount` for `part` of `of`.

    Callers keep the cumulative figure and take differences, so a sequence of partial
    refunds returns exactly `amount` once `part` reaches `of`."""
    if of <= 0:
        return 0
    return amount * min(part, of) // of
