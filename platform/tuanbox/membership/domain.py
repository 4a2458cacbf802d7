"""Membership rules, pure: where a new term starts, and what a refund returns."""

from __future__ import annotations

from datetime import datetime, timedelta

DAY = timedelta(days=1)


def term_window(
    now: datetime, current_end: datetime | None, days: int
) -> tuple[datetime, datetime]:
    """A new term starts at the current end when the shopper is still a member (renewal
    loses no day), else now."""
    start = current_end if current_end is not None and current_end > now else now
    return start, start + days * DAY


def days_left(now: datetime, start: datetime, end: datetime) -> int:
    """Whole days of the term not yet begun at `now` (a started day is used)."""
    if now <= start:
        return int((end - start) / DAY)
    if now >= end:
        return 0
    return int((end - now) // DAY)


def pro_rata_cents(amount_cents: int, days: int, left: int) -> int:
    """The refund for `left` unused days of a `days`-day term bought for `amount_cents`:
    exact integer cents, rounded down (never more than was paid, all of it when unused)."""
    if left >= days:
        return amount_cents
    return amount_cents * max(left, 0) // days


def member_unit_cents(offer_cents: int, member_price_cents: int | None, member: bool) -> int:
    """What one unit costs: a member pays the lower of the offer (list, group tier, flash or
    experiment price) and the SKU's member price; anyone else pays the offer."""
    if member and member_price_cents is not None:
        return min(offer_cents, member_price_cents)
    return offer_cents


def delivery_fee_cents(fee_cents: int, free_over_cents: int, goods_cents: int, member: bool) -> int:
    """The delivery fee an order pays: none for a member, none when the goods reach the
    free-delivery threshold (`free_over_cents` > 0), none when no fee is set."""
    if member or fee_cents <= 0:
        return 0
    if free_over_cents > 0 and goods_cents >= free_over_cents:
        return 0
    return fee_cents
