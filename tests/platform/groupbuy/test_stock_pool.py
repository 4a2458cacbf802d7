"""Stock set aside per campaign (`groupbuy.pool`) against real PostgreSQL: the cap reserved
once, joins drawing from their group's chunk, units coming back on every lapse, the pool
going back to the SKU when the campaign ends, and a join that never waits on the SKU row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import fixed_spec, make_shop, make_shoppers, pay
from tests.platform.groupbuy.stockcheck import check_campaign, check_sku
from tuanbox.audit.services import Actor
from tuanbox.catalog.errors import InsufficientStockError
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.groupbuy import pool, services
from tuanbox.groupbuy.closing import close_group
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.settings import Settings

SHOPPER = Actor(id="system:test", role="system")


def _campaign(session: Session, *, stock: int = 100, cap: int = 20, **kw: object) -> Campaign:
    shop = make_shop(session, stock=stock)
    return services.create_campaign(
        session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id, stock_cap=cap, **kw),
    )


def _sku(session: Session, campaign: Campaign) -> Sku:
    session.expire_all()
    sku = session.get(Sku, campaign.sku_id)
    assert sku is not None
    return sku


def test_the_cap_is_set_aside_once_and_joins_leave_the_sku_alone(db_session: Session) -> None:
    campaign = _campaign(db_session, cap=20, members=5, per_user_limit=2)
    assert _sku(db_session, campaign).stock_reserved == 20
    users = make_shoppers(db_session, 5)
    now = utcnow()
    opened = services.open_group(db_session, campaign_id=campaign.id, user_id=users[0], now=now)
    # The group drew its chunk: the leader's unit and one per other seat.
    assert (opened.group.units_held, opened.group.units_taken) == (5, 1)
    for u in users[1:4]:
        services.join_group(db_session, group_id=opened.group.id, user_id=u, now=now)
    db_session.refresh(campaign)
    assert campaign.stock_remaining == 15
    assert _sku(db_session, campaign).stock_reserved == 20  # nothing moved on the SKU
    orders = db_session.scalars(select(Order).where(Order.group_id == opened.group.id)).all()
    assert len(orders) == 4 and all(o.stock_held for o in orders)
    check_sku(db_session, campaign.sku_id)
    check_campaign(db_session, campaign.id)


def test_a_cap_beyond_the_free_stock_is_refused(db_session: Session) -> None:
    with pytest.raises(InsufficientStockError):
        _campaign(db_session, stock=10, cap=11)


def test_a_short_chunk_tops_up_from_the_pool_and_an_empty_pool_refuses(
    db_session: Session,
) -> None:
    # Cap 7, groups of 3, up to 2 units each: the first group draws 2 + 2 = 4.
    campaign = _campaign(db_session, cap=7, members=3, per_user_limit=2)
    users = make_shoppers(db_session, 6)
    now = utcnow()
    first = services.open_group(
        db_session, campaign_id=campaign.id, user_id=users[0], qty=2, now=now
    )
    assert first.group.units_held == 4
    services.join_group(db_session, group_id=first.group.id, user_id=users[1], qty=2, now=now)
    # The chunk has 0 left; this join draws 2 more from the pool (3 left there).
    services.join_group(db_session, group_id=first.group.id, user_id=users[2], qty=2, now=now)
    db_session.refresh(first.group)
    db_session.refresh(campaign)
    assert (first.group.units_held, first.group.units_taken, campaign.stock_remaining) == (6, 6, 1)
    check_campaign(db_session, campaign.id)
    # One unit left in the pool: a leader wanting 2 is refused, one wanting 1 gets it.
    with pytest.raises(InsufficientStockError):
        services.open_group(db_session, campaign_id=campaign.id, user_id=users[3], qty=2, now=now)
    second = services.open_group(db_session, campaign_id=campaign.id, user_id=users[3], now=now)
    assert second.group.units_held == 1
    with pytest.raises(InsufficientStockError):
        services.join_group(db_session, group_id=second.group.id, user_id=users[4], now=now)
    check_sku(db_session, campaign.sku_id)
    check_campaign(db_session, campaign.id)


def test_leaving_expiring_and_failing_give_units_back_and_the_end_returns_the_pool(
    db_session: Session, settings: Settings
) -> None:
    campaign = _campaign(db_session, cap=20, members=4)
    users = make_shoppers(db_session, 4)
    now = utcnow()
    opened = services.open_group(db_session, campaign_id=campaign.id, user_id=users[0], now=now)
    group = opened.group
    joined = [
        services.join_group(db_session, group_id=group.id, user_id=u, now=now) for u in users[1:]
    ]
    # A leave: the seat and the unit go back to the group (its chunk), the SKU nets zero.
    services.leave_group(db_session, group_id=group.id, user_id=users[1], actor=SHOPPER)
    db_session.refresh(group)
    assert (group.seats_taken, group.units_held, group.units_taken) == (3, 4, 3)
    assert _sku(db_session, campaign).stock_reserved == 20
    # An expiry, the same way.
    transition(db_session, joined[1].order_id, "expired", actor=SHOPPER, reason="unpaid")
    db_session.refresh(group)
    assert (group.seats_taken, group.units_taken) == (2, 2)
    check_sku(db_session, campaign.sku_id)
    check_campaign(db_session, campaign.id)
    # One paid member, below the first tier: the group fails at its deadline. Every unit
    # goes back to the pool (the cancelled orders' and the unused chunk).
    assert pay(db_session, settings, opened.order_id) == "applied"
    closed = close_group(db_session, group, group.deadline_at + timedelta(seconds=1))
    assert closed.status == "failed"
    db_session.refresh(campaign)
    assert campaign.stock_remaining == 20
    check_sku(db_session, campaign.sku_id)
    check_campaign(db_session, campaign.id)
    # Not yet ended: nothing goes back to the SKU. Once ended, the pool does.
    assert pool.close_ended_campaigns(db_session, now=now) == []
    after_end = campaign.ends_at + timedelta(seconds=1)
    assert pool.close_ended_campaigns(db_session, now=after_end) == [campaign.id]
    db_session.refresh(campaign)
    assert campaign.stock_remaining == 0 and campaign.stock_closed_at is not None
    assert _sku(db_session, campaign).stock_reserved == 0
    check_sku(db_session, campaign.sku_id)
    # A closed pool refuses draws (a late open that passed its window check).
    with pytest.raises(InsufficientStockError):
        pool.draw(db_session, campaign.id, want=1, need=1)


def test_a_confirmed_group_keeps_its_units_and_a_later_refund_returns_them(
    db_session: Session, settings: Settings
) -> None:
    campaign = _campaign(db_session, cap=10, members=3, max_size=5)
    users = make_shoppers(db_session, 3)
    now = utcnow()
    opened = services.open_group(db_session, campaign_id=campaign.id, user_id=users[0], now=now)
    joined = [opened] + [
        services.join_group(db_session, group_id=opened.group.id, user_id=u, now=now)
        for u in users[1:]
    ]
    for j in joined:
        assert pay(db_session, settings, j.order_id) == "applied"
    group = opened.group
    db_session.refresh(group)
    closed = close_group(db_session, group, group.deadline_at + timedelta(seconds=1))
    assert closed.status == "confirmed"
    db_session.refresh(group)
    db_session.refresh(campaign)
    # The two unused seats' units went back to the pool; the members' stay with them.
    assert (group.units_held, group.units_taken, campaign.stock_remaining) == (3, 3, 7)
    check_sku(db_session, campaign.sku_id)
    check_campaign(db_session, campaign.id)
    # A confirmed order refunded while the campaign runs: its unit goes back to the pool.
    transition(db_session, joined[2].order_id, "refunded", actor=SHOPPER, reason="goodwill")
    db_session.refresh(campaign)
    assert campaign.stock_remaining == 8
    check_sku(db_session, campaign.sku_id)
    check_campaign(db_session, campaign.id)
    # The campaign ends: the pool goes back; the two members' units stay reserved for them.
    assert pool.close_ended_campaigns(db_session, now=campaign.ends_at) == [campaign.id]
    assert check_sku(db_session, campaign.sku_id)["reserved"] == 2
    # A cancellation after the end leaves its unit on the SKU, on sale again.
    transition(db_session, joined[1].order_id, "cancelled", actor=SHOPPER, reason="ops")
    assert check_sku(db_session, campaign.sku_id)["reserved"] == 1


def test_a_join_does_not_wait_for_the_sku_row(
    fresh_database: Callable[[], str], engines: Callable[..., Engine]
) -> None:
    """Before the pool, every join took the SKU row lock: this join timed out behind it."""
    engine = engines(fresh_database())
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        campaign = _campaign(s, cap=10, members=3)
        users = make_shoppers(s, 2)
        group_id = services.open_group(
            s, campaign_id=campaign.id, user_id=users[0], now=utcnow()
        ).group.id
        sku_id = campaign.sku_id
    with engine.connect() as holder, holder.begin():
        # Someone holds the SKU row (a regular order's reservation, a restock) for a while.
        holder.execute(
            text("UPDATE skus SET stock_reserved = stock_reserved WHERE id = :id"),
            {"id": sku_id},
        )
        with session_scope(factory) as s:
            s.execute(text("SET LOCAL lock_timeout = '2s'"))
            joined = services.join_group(s, group_id=group_id, user_id=users[1], now=utcnow())
        assert joined.group.seats_taken == 2
    with session_scope(factory) as s:
        group = s.get(Group, group_id)
        assert group is not None and group.seats_taken == 2
        check_sku(s, sku_id)
        check_campaign(s, campaign.id)


def test_a_group_order_gets_the_configured_time_to_pay(db_session: Session) -> None:
    """`pay_timeout_s` (TUANBOX_ORDER_PAY_TIMEOUT_S from the routes) was dropped on the way to
    the order, which always got 15 minutes."""
    campaign = _campaign(db_session, cap=10, members=3)
    users = make_shoppers(db_session, 2)
    now = utcnow()
    opened = services.open_group(
        db_session, campaign_id=campaign.id, user_id=users[0], now=now, pay_timeout_s=60
    )
    joined = services.join_group(
        db_session, group_id=opened.group.id, user_id=users[1], now=now, pay_timeout_s=120
    )
    for result, seconds in ((opened, 60), (joined, 120)):
        order = db_session.get(Order, result.order_id)
        assert order is not None
        left = (order.pay_deadline - now).total_seconds()
        assert seconds - 5 < left < seconds + 5, (seconds, left)
