"""The pure rules: what a coupon takes off, stacking, and the split that adds up to the cent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuanbox.coupons.domain import (
    CouponKind,
    Terms,
    combined_discount,
    discount_on,
    proportional,
    refusal,
    split,
    stacking_refusal,
)

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def terms(kind: CouponKind = CouponKind.AMOUNT_OFF, **kw: object) -> Terms:
    values: dict[str, object] = {
        "kind": kind,
        "amount_off_cents": 500,
        "percent_off": 0,
        "max_off_cents": None,
        "threshold_cents": 0,
        "stackable": False,
        "merchant_id": None,
        "valid_from": NOW - timedelta(days=1),
        "valid_until": NOW + timedelta(days=1),
    }
    values.update(kw)
    return Terms(**values)


def test_amount_off_percent_off_and_cap() -> None:
    assert discount_on(terms(amount_off_cents=500), 3900) == 500
    assert discount_on(terms(amount_off_cents=5000), 3900) == 3900
    pct = terms(CouponKind.PERCENT_OFF, amount_off_cents=0, percent_off=15)
    assert discount_on(pct, 999) == 149  # floor: 149.85
    capped = terms(CouponKind.PERCENT_OFF, amount_off_cents=0, percent_off=50, max_off_cents=800)
    assert discount_on(capped, 10_000) == 800


def test_refusals_name_the_reason() -> None:
    late = NOW + timedelta(days=2)
    assert refusal(terms(), total_cents=100, merchant_id="m", now=late) == "COUPON_EXPIRED"
    early = NOW - timedelta(days=2)
    assert refusal(terms(), total_cents=100, merchant_id="m", now=early) == "COUPON_NOT_YET_VALID"
    threshold = terms(threshold_cents=3900)
    assert refusal(threshold, total_cents=3899, merchant_id="m", now=NOW) == (
        "COUPON_THRESHOLD_NOT_MET"
    )
    assert refusal(threshold, total_cents=3900, merchant_id="m", now=NOW) is None
    other = terms(merchant_id="m2")
    assert refusal(other, total_cents=100, merchant_id="m", now=NOW) == "COUPON_NOT_APPLICABLE"


def test_stacking() -> None:
    assert stacking_refusal([False], with_points=False) is None
    assert stacking_refusal([True, True], with_points=True) is None
    assert stacking_refusal([True, False], with_points=False) == "STACKING_REFUSED"
    assert stacking_refusal([False], with_points=True) == "STACKING_REFUSED"
    assert stacking_refusal([], with_points=True) is None


def test_combined_discount_leaves_a_cent_to_pay() -> None:
    assert combined_discount([terms(amount_off_cents=1000)], 500) == [499]
    # In turn: 10 % of what the ¥5 coupon left.
    pct = terms(CouponKind.PERCENT_OFF, amount_off_cents=0, percent_off=10)
    assert combined_discount([terms(amount_off_cents=500), pct], 10_000) == [500, 950]


def test_split_examples() -> None:
    assert split(100, [1, 1, 1]) == [34, 33, 33]
    assert split(0, [5, 5]) == [0, 0]
    assert split(7, [0, 10]) == [0, 7]
    assert split(10, [3, 3, 4]) == [3, 3, 4]
    with pytest.raises(ValueError, match="over nothing"):
        split(1, [0, 0])


carts = st.lists(st.integers(min_value=0, max_value=100_000_000), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(lines=carts, data=st.data())
def test_line_discounts_add_up_to_the_order_discount(lines: list[int], data: st.DataObject) -> None:
    total = sum(lines)
    coupon = data.draw(
        st.one_of(
            st.builds(
                lambda off, threshold: terms(amount_off_cents=off, threshold_cents=threshold),
                st.integers(1, 10**9),
                st.integers(0, 10**9),
            ),
            st.builds(
                lambda pct, cap: terms(
                    CouponKind.PERCENT_OFF, amount_off_cents=0, percent_off=pct, max_off_cents=cap
                ),
                st.integers(1, 99),
                st.none() | st.integers(1, 10**9),
            ),
        )
    )
    [off] = combined_discount([coupon], total)
    assert 0 <= off <= max(0, total - 1)
    shares = split(off, lines)
    assert sum(shares) == off
    assert all(0 <= s <= line for s, line in zip(shares, lines, strict=True))
    if total:
        # Each share is within a cent of its exact proportional share.
        assert all(
            abs(s * total - off * line) < total for s, line in zip(shares, lines, strict=True)
        )
    # Points off what the coupon left on each line: still within every line.
    points = data.draw(st.integers(0, max(0, total - off - 1)))
    left = [line - s for line, s in zip(lines, shares, strict=True)]
    point_shares = split(points, left)
    assert sum(point_shares) == points
    assert all(p <= rest for p, rest in zip(point_shares, left, strict=True))


@given(
    amount=st.integers(0, 10**6),
    of=st.integers(1, 10**9),
    parts=st.lists(st.integers(0, 10**6), max_size=10),
)
def test_cumulative_proportions_add_up_exactly(amount: int, of: int, parts: list[int]) -> None:
    done, taken = 0, 0
    for part in parts:
        done = min(of, done + part)
        target = proportional(done, of, amount)
        assert target >= taken
        taken = target
    assert proportional(of, of, amount) == amount
