"""Unit and property tests of the pure group-buy rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuanbox.groupbuy.domain import (
    GroupStatus,
    IllegalGroupTransitionError,
    InvalidCampaignError,
    Member,
    PriceSchedule,
    Tier,
    check_transition,
    final_unit_price,
    is_due,
    needs_one_more,
    next_leader,
    outcome_at_close,
    progress,
    refund_due,
)

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
TIERED = PriceSchedule.build([Tier(5, 800), Tier(3, 900), Tier(10, 700)], max_size=10)


@st.composite
def schedules(draw: st.DrawFn) -> tuple[PriceSchedule, int]:
    counts = sorted(draw(st.sets(st.integers(1, 30), min_size=1, max_size=5)))
    prices = sorted(
        draw(st.lists(st.integers(0, 100_000), min_size=len(counts), max_size=len(counts))),
        reverse=True,
    )
    max_size = draw(st.integers(counts[-1], 40))
    return PriceSchedule.build(
        [Tier(c, p) for c, p in zip(counts, prices, strict=True)], max_size=max_size
    ), max_size


def test_tiers_are_sorted_and_resolved() -> None:
    assert TIERED.min_size == 3
    assert TIERED.reached(2) is None
    assert TIERED.reached(3) == Tier(3, 900)
    assert TIERED.reached(7) == Tier(5, 800)
    assert TIERED.reached(10) == Tier(10, 700)
    assert TIERED.next_tier(5) == Tier(10, 700)
    assert TIERED.next_tier(10) is None


@pytest.mark.parametrize(
    ("tiers", "max_size"),
    [
        ([], 5),
        ([Tier(3, 900), Tier(5, 950)], 5),
        ([Tier(3, 900), Tier(3, 800)], 5),
        ([Tier(3, 900), Tier(6, 800)], 5),
        ([Tier(0, 900)], 5),
        ([Tier(2, -1)], 5),
    ],
)
def test_invalid_schedules_are_refused(tiers: list[Tier], max_size: int) -> None:
    with pytest.raises(InvalidCampaignError):
        PriceSchedule.build(tiers, max_size=max_size)


@given(schedules(), st.integers(0, 40))
def test_join_price_never_below_final_price(sched: tuple[PriceSchedule, int], joined: int) -> None:
    schedule, _ = sched
    # Whoever joined with `joined` members paid join_price; any later success only lowers it.
    paid_then = schedule.join_price(joined)
    for later in range(max(joined, schedule.min_size), joined + 15):
        owed = final_unit_price(schedule, later, is_leader=False, leader_price_cents=None)
        assert owed <= paid_then
        assert refund_due(paid_then, owed) == paid_then - owed


@given(schedules(), st.integers(0, 40), st.integers(0, 40))
def test_more_members_never_cost_more(sched: tuple[PriceSchedule, int], a: int, b: int) -> None:
    schedule, _ = sched
    lo, hi = sorted((a, b))
    assert schedule.join_price(hi) <= schedule.join_price(lo)


@given(schedules(), st.integers(0, 40), st.integers(0, 40))
def test_progress_is_consistent(sched: tuple[PriceSchedule, int], seats: int, paid: int) -> None:
    schedule, max_size = sched
    seats = min(seats, max_size)
    paid = min(paid, seats)
    p = progress(
        schedule,
        seats_taken=seats,
        paid=paid,
        max_size=max_size,
        deadline_at=NOW + timedelta(hours=1),
        now=NOW,
    )
    assert p.members == seats and p.seats_left == max_size - seats
    assert p.needed == max(0, schedule.min_size - paid)
    assert (p.needed == 0) == (outcome_at_close(paid, schedule.min_size) is GroupStatus.CONFIRMED)
    if p.next_tier_members is not None:
        assert p.members_to_next_tier == p.next_tier_members - paid > 0
    assert 0 <= p.percent <= 100
    assert p.seconds_left == 3600


def test_leader_price_is_a_ceiling_for_the_leader_only() -> None:
    assert final_unit_price(TIERED, 5, is_leader=True, leader_price_cents=750) == 750
    assert final_unit_price(TIERED, 10, is_leader=True, leader_price_cents=750) == 700
    assert final_unit_price(TIERED, 5, is_leader=False, leader_price_cents=750) == 800
    with pytest.raises(IllegalGroupTransitionError):
        final_unit_price(TIERED, 2, is_leader=False, leader_price_cents=None)


def test_state_machine() -> None:
    check_transition(GroupStatus.OPEN, GroupStatus.FILLED)
    check_transition(GroupStatus.FILLED, GroupStatus.CONFIRMED)
    for bad in [
        (GroupStatus.FILLED, GroupStatus.FAILED),
        (GroupStatus.CONFIRMED, GroupStatus.FAILED),
        (GroupStatus.FAILED, GroupStatus.OPEN),
    ]:
        with pytest.raises(IllegalGroupTransitionError):
            check_transition(*bad)


def test_due() -> None:
    assert is_due(GroupStatus.FILLED, NOW + timedelta(days=1), NOW)
    assert is_due(GroupStatus.OPEN, NOW, NOW)
    assert not is_due(GroupStatus.OPEN, NOW + timedelta(seconds=1), NOW)
    assert not is_due(GroupStatus.CONFIRMED, NOW - timedelta(days=1), NOW)


@given(
    st.lists(
        st.tuples(st.integers(1, 50), st.booleans()),
        min_size=1,
        max_size=12,
        unique_by=lambda t: t[0],
    )
)
def test_leader_handover_goes_to_earliest_active(rows: list[tuple[int, bool]]) -> None:
    members = [Member(user_id=u, joined_seq=i, active=a) for i, (u, a) in enumerate(rows)]
    leaving = members[0].user_id
    heir = next_leader(members, leaving)
    candidates = [m for m in members if m.active and m.user_id != leaving]
    if not candidates:
        assert heir is None
    else:
        assert heir == candidates[0].user_id


def test_reminder_moment() -> None:
    assert needs_one_more(2, 3)
    assert not needs_one_more(3, 3)
    assert not needs_one_more(1, 3)
