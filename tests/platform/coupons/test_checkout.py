"""Coupons and points at checkout, on real PostgreSQL: what the shopper pays, what partial and
full refunds give back (money, coupons, points), and every refusal's code."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.platform.coupons.support import pay, pay_out, pick_up, refund_now, template
from tests.platform.factories import make_order, make_product, make_sku, make_user
from tuanbox.audit.services import Actor
from tuanbox.coupons import checkout
from tuanbox.coupons.errors import (
    CouponExpiredError,
    CouponLimitReachedError,
    CouponNotApplicableError,
    CouponUnavailableError,
    DiscountLockedError,
    StackingRefusedError,
)
from tuanbox.coupons.models import Coupon, CouponEntry, OrderDiscountLine
from tuanbox.coupons.services import issue_by_rule, issue_one, issue_to_users, redeem_points
from tuanbox.coupons.settlement import refund_units
from tuanbox.db.base import utcnow
from tuanbox.orders.services import transition
from tuanbox.points import services as points
from tuanbox.points.errors import InsufficientPointsError, PointsOverLimitError
from tuanbox.points.models import PointsAccount
from tuanbox.settings import Settings

POLICY = checkout.Policy(cents_per_point=1, max_points_share_pct=50)
SYSTEM = ("system", "system")


def _balance(session: Session, user_id: str) -> int:
    derived, _debt = points.balance_of(session, user_id)
    cached = session.get(PointsAccount, user_id)
    assert cached is None or cached.balance == derived  # the cache never drifts
    return derived


def test_coupon_lowers_what_is_paid_and_splits_over_units(
    db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=1000), qty=3)
    coupon = issue_one(db_session, template(db_session, amount_off_cents=500).id, shopper.id, "k1")
    discount = checkout.apply(db_session, order.id, shopper.id, [coupon.id], 0, POLICY)
    assert (discount.coupon_cents, order.discount_cents) == (500, 500)
    lines = checkout.lines_of(db_session, order.id)
    assert [line.coupon_cents for line in lines] == [167, 167, 166]
    pay(db_session, settings, order)
    assert order.paid_cents == 2500
    assert db_session.get(Coupon, coupon.id).status == "used"  # type: ignore[union-attr]


def test_partial_refund_by_units_returns_what_was_paid_for_them(
    db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=1000), qty=3)
    tpl = template(db_session, amount_off_cents=500, stackable=True)
    coupon = issue_one(db_session, tpl.id, shopper.id, "k")
    points.post(db_session, shopper.id, "gift", "earn", 400)
    checkout.apply(db_session, order.id, shopper.id, [coupon.id], 400, POLICY)
    pay(db_session, settings, order)
    assert order.paid_cents == 3000 - 500 - 400
    lines = checkout.lines_of(db_session, order.id)
    assert sum(line.coupon_cents + line.points_cents for line in lines) == 900
    # The last unit: 1000 less its 166 of coupon and its share of the points.
    last = lines[-1]
    one = refund_units(db_session, order.id, 1, reason="one crushed box", key="r1")
    assert one.amount_cents == 1000 - last.coupon_cents - last.points_cents
    assert refund_units(db_session, order.id, 1, reason="again", key="r1").id == one.id  # same key
    pay_out(db_session, settings, one)
    # Points spent come back in proportion; the coupon stays used (not a full refund).
    assert _balance(db_session, shopper.id) == 400 * one.amount_cents // 2100
    assert db_session.get(Coupon, coupon.id).status == "used"  # type: ignore[union-attr]
    rest = refund_units(db_session, order.id, 2, reason="the rest", key="r2")
    assert one.amount_cents + rest.amount_cents == order.paid_cents == 2100
    with pytest.raises(DiscountLockedError):
        refund_units(db_session, order.id, 1, reason="nothing left", key="r3")
    pay_out(db_session, settings, rest)
    db_session.refresh(order)
    assert order.refunded_cents == order.paid_cents
    # Refunded in full: every point back, and the coupon in the wallet again.
    assert _balance(db_session, shopper.id) == 400
    assert db_session.get(Coupon, coupon.id).status == "available"  # type: ignore[union-attr]


def test_coupon_of_a_cancelled_paid_order_comes_back_or_expires(
    db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    sku = make_sku(db_session, price_cents=2000, stock=20)
    keeps = issue_one(db_session, template(db_session).id, shopper.id, "keeps")
    short = template(db_session, valid_until=utcnow() + timedelta(seconds=30))
    lapses = issue_one(db_session, short.id, shopper.id, "lapses")
    kept_order = make_order(db_session, user=shopper, sku=sku)
    lapsed_order = make_order(db_session, user=shopper, sku=sku)
    checkout.apply(db_session, kept_order.id, shopper.id, [keeps.id], 0, POLICY)
    checkout.apply(db_session, lapsed_order.id, shopper.id, [lapses.id], 0, POLICY)
    for order in (kept_order, lapsed_order):
        pay(db_session, settings, order)
        transition(db_session, order, "cancelled", actor=support_actor(), reason="changed mind")
    lapses.valid_until = utcnow() - timedelta(seconds=1)  # its window ends before the refund
    from tuanbox.payments.models import Refund

    for row in db_session.scalars(select(Refund).where(Refund.status == "pending")):
        if row.order_id in (kept_order.id, lapsed_order.id):
            pay_out(db_session, settings, row)
    db_session.refresh(keeps)
    db_session.refresh(lapses)
    assert (keeps.status, keeps.order_id) == ("available", None)
    assert (lapses.status, lapses.order_id) == ("expired", None)
    kinds = db_session.scalars(
        select(CouponEntry.kind).where(CouponEntry.coupon_id == keeps.id).order_by(CouponEntry.id)
    ).all()
    assert kinds == ["issued", "redeemed", "restored"]
    # The coupon that came back works on the next order.
    again = make_order(db_session, user=shopper, sku=sku)
    assert checkout.apply(db_session, again.id, shopper.id, [keeps.id], 0, POLICY).coupon_cents


def support_actor() -> Actor:
    return Actor("ops-1", "ops")


def test_unpaid_order_expiring_releases_coupon_and_points(db_session: Session) -> None:
    shopper = make_user(db_session)
    coupon = issue_one(db_session, template(db_session).id, shopper.id, "k")
    points.post(db_session, shopper.id, "gift", "earn", 300)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=2000))
    checkout.apply(db_session, order.id, shopper.id, [coupon.id], 300, POLICY)
    assert _balance(db_session, shopper.id) == 0
    transition(db_session, order, "expired", actor=support_actor(), reason="unpaid")
    db_session.refresh(coupon)
    assert coupon.status == "available"
    assert _balance(db_session, shopper.id) == 300


def test_reapplying_replaces_the_discount(db_session: Session) -> None:
    shopper = make_user(db_session)
    tpl = template(db_session, stackable=True)
    a = issue_one(db_session, tpl.id, shopper.id, "a")
    b = issue_one(db_session, tpl.id, shopper.id, "b")
    points.post(db_session, shopper.id, "gift", "earn", 100)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=3000))
    checkout.apply(db_session, order.id, shopper.id, [a.id, b.id], 100, POLICY)
    assert order.discount_cents == 1100
    checkout.apply(db_session, order.id, shopper.id, [b.id], 0, POLICY)
    db_session.refresh(a)
    assert (a.status, order.discount_cents, _balance(db_session, shopper.id)) == (
        "available",
        500,
        100,
    )
    checkout.apply(db_session, order.id, shopper.id, [], 0, POLICY)
    assert order.discount_cents == 0
    assert (
        db_session.scalar(
            select(func.count()).where(Coupon.user_id == shopper.id, Coupon.status == "available")
        )
        == 2
    )


def test_refusals(db_session: Session, settings: Settings) -> None:
    shopper = make_user(db_session)
    other = make_user(db_session)
    sku = make_sku(db_session, price_cents=3000, stock=50)
    order = make_order(db_session, user=shopper, sku=sku)
    mine = template(db_session, threshold_cents=5000)
    big = issue_one(db_session, mine.id, shopper.id, "threshold")
    with pytest.raises(CouponNotApplicableError) as info:
        checkout.apply(db_session, order.id, shopper.id, [big.id], 0, POLICY)
    assert info.value.extra["reason"] == "COUPON_THRESHOLD_NOT_MET"
    elsewhere = template(db_session, merchant_id=make_product(db_session).merchant_id)
    c = issue_one(db_session, elsewhere.id, shopper.id, "elsewhere")
    with pytest.raises(CouponNotApplicableError):
        checkout.apply(db_session, order.id, shopper.id, [c.id], 0, POLICY)
    theirs = issue_one(db_session, template(db_session).id, other.id, "theirs")
    with pytest.raises(CouponUnavailableError):
        checkout.apply(db_session, order.id, shopper.id, [theirs.id], 0, POLICY)
    old = issue_one(db_session, template(db_session).id, shopper.id, "old")
    old.valid_until = utcnow() - timedelta(minutes=1)
    with pytest.raises(CouponExpiredError) as expired:
        checkout.apply(db_session, order.id, shopper.id, [old.id], 0, POLICY)
    assert expired.value.code == "COUPON_EXPIRED"
    solo = template(db_session, stackable=False)
    one = issue_one(db_session, solo.id, shopper.id, "s1")
    two = issue_one(db_session, solo.id, shopper.id, "s2")
    with pytest.raises(StackingRefusedError):
        checkout.apply(db_session, order.id, shopper.id, [one.id, two.id], 0, POLICY)
    points.post(db_session, shopper.id, "gift", "earn", 5000)
    with pytest.raises(StackingRefusedError):
        checkout.apply(db_session, order.id, shopper.id, [one.id], 10, POLICY)
    with pytest.raises(PointsOverLimitError):
        checkout.apply(db_session, order.id, shopper.id, [], 1501, POLICY)  # over 50 %
    poor = make_user(db_session)
    poor_order = make_order(db_session, user=poor, sku=sku)
    with pytest.raises(InsufficientPointsError):
        checkout.apply(db_session, poor_order.id, poor.id, [], 10, POLICY)
    limited = template(db_session, per_user_limit=1)
    issue_one(db_session, limited.id, shopper.id, "only")
    with pytest.raises(CouponLimitReachedError):
        issue_one(db_session, limited.id, shopper.id, "second")
    checkout.apply(db_session, order.id, shopper.id, [one.id], 0, POLICY)
    pay(db_session, settings, order)
    with pytest.raises(DiscountLockedError):
        checkout.apply(db_session, order.id, shopper.id, [], 0, POLICY)
    # A group-buy order takes coupons too (settled again when its group closes).
    group = make_order(db_session, user=shopper, sku=sku, kind="group")
    assert checkout.apply(db_session, group.id, shopper.id, [two.id], 0, POLICY).coupon_cents


def test_new_user_and_wake_up_rules(db_session: Session, settings: Settings) -> None:
    fresh = make_user(db_session)
    regular = make_user(db_session)
    dormant = make_user(db_session)
    sku = make_sku(db_session, price_cents=1000, stock=50)
    pay(db_session, settings, make_order(db_session, user=regular, sku=sku))
    old = pay(db_session, settings, make_order(db_session, user=dormant, sku=sku))
    old.paid_at = utcnow() - timedelta(days=40)
    db_session.flush()
    newbie = template(db_session, audience="new_user", per_user_limit=1)
    wake = template(db_session, audience="wake_up")
    got_new = issue_by_rule(db_session, newbie.id, "new-1")
    got_wake = issue_by_rule(db_session, wake.id, "wake-1", dormant_days=30)
    assert fresh.id in {c.user_id for c in got_new.issued}
    assert {regular.id, dormant.id}.isdisjoint({c.user_id for c in got_new.issued})
    assert [
        c.user_id for c in got_wake.issued if c.user_id in (fresh.id, regular.id, dormant.id)
    ] == [dormant.id]
    # Run again: nothing new.
    assert issue_by_rule(db_session, newbie.id, "new-1").issued == []
    listed = issue_to_users(db_session, newbie.id, [regular.id, fresh.id], "list-1")
    assert listed.skipped == {regular.id: "NOT_A_NEW_USER", fresh.id: "COUPON_LIMIT_REACHED"}
    # A new-user coupon is for a first order only.
    coupon = next(c for c in got_new.issued if c.user_id == fresh.id)
    first = make_order(db_session, user=fresh, sku=sku)
    second = make_order(db_session, user=fresh, sku=sku)
    pay(db_session, settings, second)
    with pytest.raises(CouponNotApplicableError):
        checkout.apply(db_session, first.id, fresh.id, [coupon.id], 0, POLICY)


def test_points_earned_on_pickup_and_reversed_exactly(
    db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=3333), qty=3)
    pay(db_session, settings, order)  # 99.99 yuan
    assert _balance(db_session, shopper.id) == 0  # nothing before it completes
    pick_up(db_session, order)
    assert _balance(db_session, shopper.id) == 99
    pick_up_again = transition  # a repeated hook run (completed) earns nothing more
    pick_up_again(db_session, order, "completed", actor=support_actor(), reason="done")
    assert _balance(db_session, shopper.id) == 99
    taken = 0
    for i, cents in enumerate((1, 2500, 3333, 4165)):  # partial refunds adding up to 9999
        refund_now(db_session, settings, order, cents, f"p{i}")
        taken_now = 99 - _balance(db_session, shopper.id)
        assert taken_now >= taken
        taken = taken_now
    assert _balance(db_session, shopper.id) == 0  # exactly what it earned, no more


def test_points_never_negative_a_refund_of_spent_points_leaves_debt(
    db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    sku = make_sku(db_session, price_cents=10_000, stock=10)
    first = pay(db_session, settings, make_order(db_session, user=shopper, sku=sku))
    pick_up(db_session, first)
    assert _balance(db_session, shopper.id) == 100
    # Spend 80 of them on the next order, then the first is refunded in full.
    second = make_order(db_session, user=shopper, sku=sku)
    checkout.apply(db_session, second.id, shopper.id, [], 80, POLICY)
    refund_now(db_session, settings, first, 10_000, "all")
    assert _balance(db_session, shopper.id) == 0
    assert points.balance_of(db_session, shopper.id)[1] == 80  # owed back
    with pytest.raises(InsufficientPointsError):
        points.post(db_session, shopper.id, "spend-x", "spend", -1)
    # The next points earned pay the debt first.
    pick_up(db_session, pay(db_session, settings, second))  # paid 99.20 yuan -> 99 points
    assert points.balance_of(db_session, shopper.id) == (99 - 80, 0)


def test_points_buy_a_coupon_once_per_key(db_session: Session) -> None:
    shopper = make_user(db_session)
    tpl = template(db_session, points_cost=200)
    points.post(db_session, shopper.id, "gift", "earn", 300)
    coupon = redeem_points(db_session, shopper.id, tpl.id, "once")
    assert redeem_points(db_session, shopper.id, tpl.id, "once").id == coupon.id
    assert _balance(db_session, shopper.id) == 100
    with pytest.raises(InsufficientPointsError):
        redeem_points(db_session, shopper.id, tpl.id, "twice")
    with pytest.raises(CouponNotApplicableError):
        redeem_points(db_session, shopper.id, template(db_session).id, "not-for-points")


def test_lines_are_stored_per_unit(db_session: Session) -> None:
    shopper = make_user(db_session)
    pct = template(
        db_session, kind="percent_off", amount_off_cents=0, percent_off=33, max_off_cents=700
    )
    coupon = issue_one(db_session, pct.id, shopper.id, "pct")
    order = make_order(db_session, user=shopper, sku=make_sku(db_session, price_cents=999), qty=7)
    checkout.apply(db_session, order.id, shopper.id, [coupon.id], 0, POLICY)
    rows = db_session.scalars(
        select(OrderDiscountLine).where(OrderDiscountLine.order_id == order.id)
    ).all()
    assert len(rows) == 7
    assert sum(r.coupon_cents for r in rows) == order.discount_cents == 700


@examples(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    price=st.integers(1, 500_000),
    qty=st.integers(1, 30),
    off=st.integers(1, 10_000_000),
    pct=st.integers(1, 99),
    share=st.integers(0, 100),
)
def test_stored_lines_add_up_to_the_order_discount_for_random_orders(
    db_session: Session, price: int, qty: int, off: int, pct: int, share: int
) -> None:
    """On PostgreSQL: whatever the order and coupons, the lines hold the discount exactly."""
    shopper = make_user(db_session)
    order = make_order(
        db_session, user=shopper, sku=make_sku(db_session, price_cents=price, stock=qty), qty=qty
    )
    amount = issue_one(db_session, template(db_session, amount_off_cents=off).id, shopper.id, "a")
    percent = template(db_session, kind="percent_off", amount_off_cents=0, percent_off=pct)
    second = issue_one(db_session, percent.id, shopper.id, "p")
    room = max(0, order.total_cents - 1)
    wanted = min(room * share // 100, order.total_cents // 2)
    points.post(db_session, shopper.id, f"gift:{order.id}", "earn", max(wanted, 1))
    try:
        checkout.apply(db_session, order.id, shopper.id, [amount.id, second.id], wanted, POLICY)
    except PointsOverLimitError:
        checkout.apply(db_session, order.id, shopper.id, [amount.id, second.id], 0, POLICY)
    lines = checkout.lines_of(db_session, order.id)
    assert len(lines) == qty
    assert sum(x.coupon_cents + x.points_cents for x in lines) == order.discount_cents
    assert all(x.coupon_cents + x.points_cents <= x.amount_cents for x in lines)
    assert 0 <= order.discount_cents < order.total_cents or order.total_cents == 0
