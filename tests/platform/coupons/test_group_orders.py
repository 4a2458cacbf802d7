"""Coupons and points on group-buy orders, on real PostgreSQL (coupons README, "Group-buy
orders"): the discount is fixed at checkout against the price paid then; when the group
closes at a lower tier the shopper ends up owing what checkout would have asked at the final
price (amount off kept, percent off taken on the final goods, points kept); a failed group
gives back the money, the coupon and the points once; units returned after closing give back
their largest-remainder line; two closers and two unit refunds racing pay each refund once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.coupons.support import pay_out, template
from tests.platform.coupons.test_races import together
from tests.platform.groupbuy.factories import (
    fixed_spec,
    make_shop,
    make_shoppers,
    pay,
    tiered_spec,
)
from tuanbox.coupons import checkout
from tuanbox.coupons.errors import DiscountLockedError
from tuanbox.coupons.models import Coupon, CouponEntry
from tuanbox.coupons.services import issue_one
from tuanbox.coupons.settlement import refund_paid, refund_units
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.groupbuy import services as groupbuy
from tuanbox.groupbuy.closing import close_due_groups, close_group
from tuanbox.groupbuy.models import Group
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund
from tuanbox.points import services as points
from tuanbox.points.models import PointsAccount, PointsEntry
from tuanbox.settings import Settings

POLICY = checkout.Policy(cents_per_point=1, max_points_share_pct=50)


def _balance(session: Session, user_id: str) -> int:
    derived, _debt = points.balance_of(session, user_id)
    cached = session.get(PointsAccount, user_id)
    assert cached is None or cached.balance == derived
    return derived


def _pay_refunds(session: Session, settings: Settings, order: Order) -> int:
    """Pay out every refund owed on the order; what it got back in all."""
    for row in session.scalars(select(Refund).where(Refund.order_id == order.id)):
        if row.status == "pending":
            pay_out(session, settings, row)
    session.refresh(order)
    return order.refunded_cents


@dataclass
class Tiered:
    group: Group
    mine: Order  # the discounted order (users[0], the opener)
    others: list[str]
    user_id: str


def _tiered_group(
    session: Session,
    settings: Settings,
    *,
    qty: int,
    coupon_fields: dict[str, object],
    points_wanted: int,
    now: datetime,
) -> tuple[Tiered, str]:
    """Tiers 3 → ¥9, 5 → ¥8, 10 → ¥7 (list ¥12); the opener checks out with a coupon and
    points at ¥9 a unit, four others join and pay: the group reaches the ¥8 tier."""
    shop = make_shop(session, price_cents=1200)
    users = make_shoppers(session, 5)
    campaign = groupbuy.create_campaign(
        session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=tiered_spec(shop.sku_id, now=now),
    )
    opened = groupbuy.open_group(
        session, campaign_id=campaign.id, user_id=users[0], qty=qty, now=now
    )
    coupon = issue_one(session, template(session, **coupon_fields).id, users[0], "gb")
    if points_wanted:
        points.post(session, users[0], "gift", "earn", 1000)
    checkout.apply(session, opened.order_id, users[0], [coupon.id], points_wanted, POLICY, now=now)
    assert pay(session, settings, opened.order_id) == "applied"
    others = [
        groupbuy.join_group(session, group_id=opened.group.id, user_id=u, now=now).order_id
        for u in users[1:]
    ]
    for order_id in others:
        assert pay(session, settings, order_id) == "applied"
    order = session.get(Order, opened.order_id)
    assert order is not None
    session.refresh(opened.group)
    return Tiered(opened.group, order, others, users[0]), coupon.id


def test_amount_off_and_points_at_a_lower_tier_refund_the_goods_difference_exactly(
    db_session: Session, settings: Settings
) -> None:
    now = utcnow()
    t, coupon_id = _tiered_group(
        db_session,
        settings,
        qty=2,
        coupon_fields={"amount_off_cents": 500, "threshold_cents": 1500},
        points_wanted=300,
        now=now,
    )
    order = t.mine
    assert (order.unit_price_cents, order.discount_cents, order.paid_cents) == (900, 800, 1000)
    assert _balance(db_session, t.user_id) == 700
    # Units cannot be returned one by one before the price is known.
    with pytest.raises(DiscountLockedError):
        refund_units(db_session, order.id, 1, reason="early", key="early")
    closed = close_group(db_session, t.group, t.group.deadline_at + timedelta(seconds=1))
    assert closed.unit_price_cents == 800
    # Owed: 2 x 800 − 500 − 300 = 800 (the threshold of 1500 was met at payment; the final
    # goods 1600 still would, but it is not judged again).
    assert closed.refunds[order.id] == 200
    assert all(closed.refunds[o] == 100 for o in t.others[:3]) and t.others[3] not in closed.refunds
    assert _pay_refunds(db_session, settings, order) == 200
    assert order.paid_cents - order.refunded_cents == 800
    # A lower price is not goods returned: the points stay spent, the coupon stays used.
    assert _balance(db_session, t.user_id) == 700
    coupon = db_session.get(Coupon, coupon_id)
    assert coupon is not None and coupon.status == "used" and coupon.order_id == order.id
    lines = checkout.lines_of(db_session, order.id)
    assert [(x.amount_cents, x.coupon_cents, x.points_cents) for x in lines] == [
        (800, 250, 150),
        (800, 250, 150),
    ]
    # Repeating the repayment hook changes nothing.
    refund_paid(db_session, order)
    assert _balance(db_session, t.user_id) == 700

    # Units returned after closing: each gives back its line, points in proportion.
    first = pay_out(
        db_session, settings, refund_units(db_session, order.id, 1, reason="r", key="a")
    )
    assert first.amount_cents == 400
    assert _balance(db_session, t.user_id) == 850
    assert db_session.get(Coupon, coupon_id).status == "used"  # type: ignore[union-attr]
    last = pay_out(db_session, settings, refund_units(db_session, order.id, 1, reason="r", key="b"))
    assert last.amount_cents == 400
    db_session.refresh(order)
    assert order.refunded_cents == order.paid_cents == 1000
    assert _balance(db_session, t.user_id) == 1000
    coupon = db_session.get(Coupon, coupon_id)
    assert coupon is not None and coupon.status == "available" and coupon.order_id is None


def test_percent_off_is_taken_on_the_final_price(db_session: Session, settings: Settings) -> None:
    now = utcnow()
    t, _coupon_id = _tiered_group(
        db_session,
        settings,
        qty=1,
        coupon_fields={"kind": "percent_off", "amount_off_cents": 0, "percent_off": 10},
        points_wanted=0,
        now=now,
    )
    order = t.mine
    assert (order.discount_cents, order.paid_cents) == (90, 810)
    closed = close_group(db_session, t.group, t.group.deadline_at + timedelta(seconds=1))
    # Owed: 800 − 10 % of 800 = 720, what checkout would have asked at ¥8.
    assert closed.refunds[order.id] == 90
    _pay_refunds(db_session, settings, order)
    assert order.paid_cents - order.refunded_cents == 720
    lines = checkout.lines_of(db_session, order.id)
    assert [(x.amount_cents, x.coupon_cents, x.points_cents) for x in lines] == [(800, 80, 0)]


def test_points_beyond_the_final_price_come_back_as_points(
    db_session: Session, settings: Settings
) -> None:
    """A steep last tier: the goods keep one cent payable, the coupon gives way first, then
    the points, whose excess goes back to the wallet."""
    now = utcnow()
    shop = make_shop(db_session, price_cents=1200)
    users = make_shoppers(db_session, 2)
    campaign = groupbuy.create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=tiered_spec(shop.sku_id, now=now, tiers=(_tier(1, 1000), _tier(2, 200))),
    )
    opened = groupbuy.open_group(db_session, campaign_id=campaign.id, user_id=users[0], now=now)
    points.post(db_session, users[0], "gift", "earn", 1000)
    coupon = issue_one(db_session, template(db_session, amount_off_cents=100).id, users[0], "x")
    checkout.apply(db_session, opened.order_id, users[0], [coupon.id], 450, POLICY, now=now)
    assert pay(db_session, settings, opened.order_id) == "applied"
    joined = groupbuy.join_group(db_session, group_id=opened.group.id, user_id=users[1], now=now)
    assert pay(db_session, settings, joined.order_id) == "applied"
    order = db_session.get(Order, opened.order_id)
    assert order is not None and order.paid_cents == 450
    db_session.refresh(opened.group)
    closed = close_group(db_session, opened.group, opened.group.deadline_at + timedelta(seconds=1))
    assert closed.unit_price_cents == 200
    # Goods 200: points keep 199 cents (251 points back), the coupon gives way entirely.
    assert closed.refunds[order.id] == 449
    _pay_refunds(db_session, settings, order)
    assert order.paid_cents - order.refunded_cents == 1
    assert _balance(db_session, users[0]) == 1000 - 450 + 251
    lines = checkout.lines_of(db_session, order.id)
    assert [(x.amount_cents, x.coupon_cents, x.points_cents) for x in lines] == [(200, 0, 199)]
    # Returning the unit now gives back the cent and the points it kept, and the coupon.
    pay_out(db_session, settings, refund_units(db_session, order.id, 1, reason="r", key="u"))
    assert _balance(db_session, users[0]) == 1000
    assert db_session.get(Coupon, coupon.id).status == "available"  # type: ignore[union-attr]


def _tier(members: int, price: int) -> object:
    from tuanbox.groupbuy.domain import Tier

    return Tier(members, price)


def test_failed_group_gives_back_money_coupon_and_points_once(
    db_session: Session, settings: Settings
) -> None:
    now = utcnow()
    shop = make_shop(db_session, price_cents=1200)
    users = make_shoppers(db_session, 1)
    campaign = groupbuy.create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id, members=5, price_cents=800, now=now),
    )
    opened = groupbuy.open_group(db_session, campaign_id=campaign.id, user_id=users[0], now=now)
    points.post(db_session, users[0], "gift", "earn", 500)
    coupon = issue_one(db_session, template(db_session, amount_off_cents=300).id, users[0], "f")
    checkout.apply(db_session, opened.order_id, users[0], [coupon.id], 200, POLICY, now=now)
    assert pay(db_session, settings, opened.order_id) == "applied"
    order = db_session.get(Order, opened.order_id)
    assert order is not None and order.paid_cents == 300
    db_session.refresh(opened.group)
    closed = close_group(db_session, opened.group, opened.group.deadline_at + timedelta(seconds=1))
    assert closed.status == "failed" and closed.refunds == {order.id: 300}
    assert _pay_refunds(db_session, settings, order) == 300
    refund_paid(db_session, order)  # the repayment hook again: nothing more
    assert _balance(db_session, users[0]) == 500
    back = db_session.get(Coupon, coupon.id)
    assert back is not None and back.status == "available" and back.order_id is None
    restored = db_session.scalar(
        select(func.count()).where(
            CouponEntry.coupon_id == coupon.id, CouponEntry.kind == "restored"
        )
    )
    returned = db_session.scalar(
        select(func.count()).where(PointsEntry.order_id == order.id, PointsEntry.kind == "return")
    )
    assert (restored, returned) == (1, 1)


@pytest.fixture
def factory(fresh_database: Callable[[], str]) -> Iterator[sessionmaker[Session]]:
    url = fresh_database()
    engine = make_engine(url, pool_size=20, max_overflow=0)
    try:
        yield make_session_factory(engine, make_settings(database_url=url))
    finally:
        engine.dispose()


def test_two_closers_and_two_unit_refunds_racing_refund_once(
    factory: sessionmaker[Session],
) -> None:
    settings = make_settings(database_url=str(factory.kw["bind"].url))
    now = utcnow()
    with factory() as session, session.begin():
        t, coupon_id = _tiered_group(
            session,
            settings,
            qty=2,
            coupon_fields={"amount_off_cents": 500},
            points_wanted=300,
            now=now,
        )
        order_id, user_id, deadline = t.mine.id, t.user_id, t.group.deadline_at
    at = deadline + timedelta(seconds=1)
    done, errors = together([lambda: close_due_groups(factory, at) for _ in range(2)])
    assert not errors, errors
    closed = [c for batch in done for c in batch]  # type: ignore[attr-defined]
    assert len(closed) == 1 and closed[0].refunds[order_id] == 200
    with factory() as session:
        rows = session.scalars(select(Refund).where(Refund.order_id == order_id)).all()
        assert [r.amount_cents for r in rows] == [200]

    def unit(key: str) -> Callable[[], object]:
        def job() -> object:
            with factory() as session, session.begin():
                return refund_units(session, order_id, 2, reason="race", key=key).amount_cents

        return job

    won, lost = together([unit("x"), unit("y")])
    assert won == [800], (won, lost)  # both lines: 2 x (800 − 250 − 150)
    assert len(lost) == 1 and isinstance(lost[0], DiscountLockedError), lost
    with factory() as session, session.begin():
        order = session.get(Order, order_id)
        assert order is not None
        for row in session.scalars(select(Refund).where(Refund.order_id == order_id)):
            if row.status == "pending":
                pay_out(session, settings, row)
        session.refresh(order)
        assert order.refunded_cents == order.paid_cents == 1000
        assert _balance(session, user_id) == 1000
        coupon = session.get(Coupon, coupon_id)
        assert coupon is not None and coupon.status == "available"
