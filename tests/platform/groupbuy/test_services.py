"""Group-buy use cases against real PostgreSQL, each test in a rolled-back transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import fixed_spec, make_shop, make_shoppers, pay, tiered_spec
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.groupbuy import services
from tuanbox.groupbuy.closing import close_group
from tuanbox.groupbuy.domain import (
    AlreadyMemberError,
    GroupClosedError,
    GroupFullError,
    IllegalGroupTransitionError,
    UserLimitExceededError,
)
from tuanbox.notifications.models import Notification
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund
from tuanbox.settings import Settings


def _group_of(session: Session, settings: Settings, spec_maker, n: int, paid: int, **kw):  # type: ignore[no-untyped-def]
    shop = make_shop(session)
    users = make_shoppers(session, n)
    campaign = services.create_campaign(
        session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=spec_maker(shop.sku_id, **kw),
    )
    now = utcnow()
    first = services.open_group(session, campaign_id=campaign.id, user_id=users[0], now=now)
    joined = [first] + [
        services.join_group(session, group_id=first.group.id, user_id=u, now=now) for u in users[1:]
    ]
    for j in joined[:paid]:
        assert pay(session, settings, j.order_id) == "applied"
    session.refresh(first.group)
    return shop, campaign, first.group, joined


def test_tiered_group_pays_the_tier_reached_and_refunds_the_difference(
    db_session: Session, settings: Settings
) -> None:
    _shop, _campaign, group, joined = _group_of(db_session, settings, tiered_spec, 5, 5)
    assert [j.unit_price_cents for j in joined] == [900, 900, 900, 900, 800]
    assert (group.seats_taken, group.paid_count, group.status) == (5, 5, "open")
    closed = close_group(db_session, group, group.deadline_at + timedelta(seconds=1))
    assert closed.status == "confirmed" and closed.unit_price_cents == 800
    assert sorted(closed.refunds.values()) == [100, 100, 100, 100]
    orders = [db_session.get(Order, j.order_id) for j in joined]
    assert {o.status for o in orders if o} == {"confirmed"}
    keys = set(
        db_session.scalars(
            select(Refund.key).where(Refund.order_id.in_([j.order_id for j in joined]))
        )
    )
    assert keys == {f"gb-close:{group.id}:{j.order_id}" for j in joined[:4]}
    # Closing again is refused by the state machine, so no second refund can appear.
    with pytest.raises(IllegalGroupTransitionError):
        close_group(db_session, group, utcnow())


def test_unfilled_group_fails_refunds_paid_and_cancels_unpaid(
    db_session: Session, settings: Settings
) -> None:
    shop, _campaign, group, joined = _group_of(db_session, settings, tiered_spec, 2, 1)
    closed = close_group(db_session, group, group.deadline_at + timedelta(seconds=1))
    assert closed.status == "failed"
    assert closed.refunds == {joined[0].order_id: 900}
    assert closed.cancelled == [joined[1].order_id]
    refunds = list(db_session.scalars(select(Refund).where(Refund.order_id == joined[0].order_id)))
    assert [r.amount_cents for r in refunds] == [900]
    sku = db_session.get(Sku, shop.sku_id)
    assert sku is not None and sku.stock_reserved == 0  # both reservations given back
    # Their per-campaign quota is free again: the same shoppers may open new groups.
    for j in joined:
        services.open_group(
            db_session, campaign_id=group.campaign_id, user_id=j.member.user_id, qty=2, now=utcnow()
        )


def test_fixed_group_fills_then_refuses_more(db_session: Session, settings: Settings) -> None:
    _shop, _campaign, group, _joined = _group_of(db_session, settings, fixed_spec, 5, 5)
    assert group.status == "filled"
    extra = make_shoppers(db_session, 1)[0]
    with pytest.raises(GroupClosedError):
        services.join_group(db_session, group_id=group.id, user_id=extra, now=utcnow())
    closed = close_group(db_session, group, utcnow())  # filled groups close at once
    assert closed.status == "confirmed" and closed.refunds == {}


def test_seats_duplicates_and_limits(db_session: Session, settings: Settings) -> None:
    _shop, campaign, group, joined = _group_of(db_session, settings, fixed_spec, 5, 0, members=5)
    late = make_shoppers(db_session, 1)[0]
    with pytest.raises(GroupFullError):
        services.join_group(db_session, group_id=group.id, user_id=late, now=utcnow())
    with pytest.raises(AlreadyMemberError):
        services.join_group(
            db_session, group_id=group.id, user_id=joined[1].member.user_id, now=utcnow()
        )
    other = services.open_group(
        db_session, campaign_id=campaign.id, user_id=late, qty=2, now=utcnow()
    )
    assert other.unit_price_cents == 800
    with pytest.raises(UserLimitExceededError):  # per_user_limit 2 across the campaign
        services.open_group(db_session, campaign_id=campaign.id, user_id=late, now=utcnow())


def test_leader_leaving_hands_over_and_frees_the_seat(
    db_session: Session, settings: Settings
) -> None:
    from tuanbox.audit.services import Actor

    _shop, _campaign, group, joined = _group_of(db_session, settings, tiered_spec, 3, 1)
    leader = joined[0].member.user_id
    group = services.leave_group(
        db_session, group_id=group.id, user_id=leader, actor=Actor(leader, "shopper")
    )
    assert group.leader_user_id == joined[1].member.user_id
    assert (group.seats_taken, group.paid_count) == (2, 0)
    order = db_session.get(Order, joined[0].order_id)
    assert order is not None and order.status == "cancelled"
    assert db_session.scalar(select(Refund.amount_cents).where(Refund.order_id == order.id)) == 900


def test_reminder_sent_once_when_one_member_is_missing(
    db_session: Session, settings: Settings
) -> None:
    _shop, _campaign, group, joined = _group_of(db_session, settings, tiered_spec, 4, 2)
    notes = list(
        db_session.scalars(
            select(Notification).where(Notification.template == "group_needs_one_more")
        )
    )
    assert len(notes) == 4 and group.reminder_sent_at is not None
    pay(db_session, settings, joined[2].order_id)
    pay(db_session, settings, joined[3].order_id)
    again = db_session.scalars(
        select(Notification).where(Notification.template == "group_needs_one_more")
    )
    assert len(list(again)) == 4


def test_unpaid_seat_lapses_with_its_order(db_session: Session, settings: Settings) -> None:
    from tuanbox.audit.services import Actor
    from tuanbox.orders.services import transition

    _shop, _campaign, group, joined = _group_of(db_session, settings, fixed_spec, 5, 1)
    transition(
        db_session, joined[4].order_id, "expired", actor=Actor("system", "system"), reason="unpaid"
    )
    db_session.refresh(group)
    assert (group.seats_taken, group.paid_count, group.leader_user_id) == (
        4,
        1,
        joined[0].member.user_id,
    )
    # The seat is free again, and the shopper whose order lapsed may take it back.
    again = services.join_group(
        db_session, group_id=group.id, user_id=joined[4].member.user_id, now=utcnow()
    )
    assert again.group.seats_taken == 5
