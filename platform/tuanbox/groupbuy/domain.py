"""Pure group-buy rules: price tiers, the group state machine, leader handover and progress.

Nothing here touches a database, Redis or a clock: callers pass `now` and plain values, so
every rule is unit- and property-tested without I/O.

Seat policy (documented once, used everywhere): a seat is taken when a shopper *joins*
(that is where overfill must be prevented, with a guarded UPDATE); the group *fills* when
its **paid** members reach `max_size`, and it *succeeds* at close when its paid members
reach `min_size`. An unpaid seat is given back when its order is cancelled or expires
with the order's payment timeout.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from tuanbox.bounds import MAX_PRICE_CENTS
from tuanbox.errors import ConflictError, InvalidInputError


class CampaignKind(StrEnum):
    FIXED = "fixed"
    TIERED = "tiered"


class GroupStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CONFIRMED = "confirmed"
    FAILED = "failed"


class GroupBuyError(ConflictError):
    code = "GROUPBUY_CONFLICT"


class GroupFullError(GroupBuyError):
    code = "GROUP_FULL"


class GroupClosedError(GroupBuyError):
    code = "GROUP_CLOSED"


class AlreadyMemberError(GroupBuyError):
    code = "ALREADY_MEMBER"


class UserLimitExceededError(GroupBuyError):
    code = "USER_LIMIT_EXCEEDED"


class CampaignNotActiveError(GroupBuyError):
    code = "CAMPAIGN_NOT_ACTIVE"


class IllegalGroupTransitionError(GroupBuyError):
    code = "ILLEGAL_GROUP_TRANSITION"


class InvalidCampaignError(InvalidInputError):
    code = "INVALID_CAMPAIGN"


class UnknownStationError(InvalidCampaignError):
    code = "UNKNOWN_STATION"


@dataclass(frozen=True, order=True)
class Tier:
    """From `members` paid members on, everyone pays `price_cents` per unit."""

    members: int
    price_cents: int


@dataclass(frozen=True)
class PriceSchedule:
    """Validated tiers, ascending by members with non-increasing prices."""

    tiers: tuple[Tier, ...]

    @classmethod
    def build(cls, tiers: Sequence[Tier], *, max_size: int) -> PriceSchedule:
        if not tiers:
            raise InvalidCampaignError("a campaign needs at least one price tier")
        ordered = tuple(sorted(tiers))
        for tier in ordered:
            if tier.members < 1 or not 0 <= tier.price_cents <= MAX_PRICE_CENTS:
                raise InvalidCampaignError(
                    f"tier {tier} needs members >= 1 and a price of 0 to {MAX_PRICE_CENTS} cents"
                )
        for lower, upper in itertools.pairwise(ordered):
            if lower.members == upper.members:
                raise InvalidCampaignError(f"two tiers for {lower.members} members")
            if upper.price_cents > lower.price_cents:
                raise InvalidCampaignError("a bigger group may never pay more per unit")
        if ordered[-1].members > max_size:
            raise InvalidCampaignError(
                f"tier for {ordered[-1].members} members exceeds max group size {max_size}"
            )
        return cls(ordered)

    @property
    def min_size(self) -> int:
        return self.tiers[0].members

    def reached(self, paid_members: int) -> Tier | None:
        """The tier reached with this many paid members, or None below the first one."""
        best: Tier | None = None
        for tier in self.tiers:
            if paid_members >= tier.members:
                best = tier
        return best

    def next_tier(self, paid_members: int) -> Tier | None:
        for tier in self.tiers:
            if tier.members > paid_members:
                return tier
        return None

    def join_price(self, members_after_join: int) -> int:
        """What a joiner pays now: the tier the group reaches with them, at least the first.

        A group below the first tier can only fail (and refund everything), so the first
        tier's price is the most anyone is ever charged; later joiners pay less and earlier
        ones get the difference back at close.
        """
        tier = self.reached(max(members_after_join, self.min_size))
        assert tier is not None  # max(..., min_size) always reaches the first tier
        return tier.price_cents


def final_unit_price(
    schedule: PriceSchedule, paid_members: int, *, is_leader: bool, leader_price_cents: int | None
) -> int:
    """Unit price a member owes when a successful group closes."""
    tier = schedule.reached(paid_members)
    if tier is None:
        raise IllegalGroupTransitionError("a group below its first tier cannot be priced")
    if is_leader and leader_price_cents is not None:
        return min(tier.price_cents, leader_price_cents)
    return tier.price_cents


def refund_due(paid_cents: int, owed_cents: int) -> int:
    """What goes back to a member who paid more than they owe (never negative)."""
    return max(0, paid_cents - owed_cents)


# Allowed group transitions; anything else is a bug or a race lost, never a silent change.
TRANSITIONS: dict[GroupStatus, frozenset[GroupStatus]] = {
    GroupStatus.OPEN: frozenset({GroupStatus.FILLED, GroupStatus.CONFIRMED, GroupStatus.FAILED}),
    GroupStatus.FILLED: frozenset({GroupStatus.CONFIRMED}),
    GroupStatus.CONFIRMED: frozenset(),
    GroupStatus.FAILED: frozenset(),
}


def check_transition(current: GroupStatus, to: GroupStatus) -> None:
    if to not in TRANSITIONS[current]:
        raise IllegalGroupTransitionError(f"a group cannot go from {current} to {to}")


def outcome_at_close(paid_members: int, min_size: int) -> GroupStatus:
    """How a due group ends: it succeeds when its paid members reached the first tier."""
    return GroupStatus.CONFIRMED if paid_members >= min_size else GroupStatus.FAILED


def is_due(status: GroupStatus, deadline_at: datetime, now: datetime) -> bool:
    """A filled group closes at once; an open one at its deadline."""
    if status is GroupStatus.FILLED:
        return True
    return status is GroupStatus.OPEN and deadline_at <= now


@dataclass(frozen=True)
class Member:
    user_id: int
    joined_seq: int
    active: bool = True


def next_leader(members: Sequence[Member], leaving_user_id: int) -> int | None:
    """After the leader leaves, the earliest-joined remaining member leads (None if nobody)."""
    remaining = sorted(
        (m for m in members if m.active and m.user_id != leaving_user_id),
        key=lambda m: m.joined_seq,
    )
    return remaining[0].user_id if remaining else None


@dataclass(frozen=True)
class Progress:
    """What a shopper sees: how far the group is and what the next tier would bring."""

    members: int
    paid: int
    needed: int
    seats_left: int
    current_price_cents: int | None
    next_tier_members: int | None
    next_tier_price_cents: int | None
    members_to_next_tier: int | None
    seconds_left: int
    percent: int = field(default=0)


def progress(
    schedule: PriceSchedule,
    *,
    seats_taken: int,
    paid: int,
    max_size: int,
    deadline_at: datetime,
    now: datetime,
) -> Progress:
    reached = schedule.reached(paid)
    upcoming = schedule.next_tier(paid)
    left = max(timedelta(0), deadline_at - now)
    return Progress(
        members=seats_taken,
        paid=paid,
        needed=max(0, schedule.min_size - paid),
        seats_left=max(0, max_size - seats_taken),
        current_price_cents=reached.price_cents if reached else None,
        next_tier_members=upcoming.members if upcoming else None,
        next_tier_price_cents=upcoming.price_cents if upcoming else None,
        members_to_next_tier=(upcoming.members - paid) if upcoming else None,
        seconds_left=int(left.total_seconds()),
        percent=min(100, (100 * paid) // max(1, schedule.min_size)),
    )


def needs_one_more(paid: int, min_size: int) -> bool:
    """The moment to remind members to share the group link."""
    return min_size - paid == 1
