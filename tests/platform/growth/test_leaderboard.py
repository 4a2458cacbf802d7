"""Invite leaderboards on real PostgreSQL: counted on invitees' picked-up, unrefunded first
orders; the top 10 of an ended period get one free-order coupon each, exactly once, whether
the job runs twice, two jobs run at once, or a worker dies between any two steps."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.coupons.support import refund_now, template
from tests.platform.factories import make_user
from tests.platform.growth.support import invitee_with_order, new_sku
from tuanbox.coupons.models import Coupon, CouponEntry
from tuanbox.db.base import utcnow
from tuanbox.growth.leaderboard import (
    Period,
    award_period,
    awards_of,
    period_of,
    set_reward,
    standings,
)
from tuanbox.growth.models import LeaderboardAward

TZ = "Asia/Shanghai"


class Killed(Exception):
    """A worker dying at this point."""


def _board(factory: sessionmaker[Session], inviters: int = 12) -> tuple[Period, list[str], str]:
    """Inviter i brings i+1 invitees (the last one most), each with a picked-up first order."""
    settings = make_settings()
    with factory() as session, session.begin():
        sku = new_sku(session)
        free = template(
            session, name="free order", amount_off_cents=1999, per_user_limit=3, valid_days=30
        )
        set_reward(session, kind="week", template_id=free.id, top_n=10, active=True, actor_id="ops")
        ids = []
        for i in range(inviters):
            inviter = make_user(session)
            ids.append(inviter.id)
            for _ in range(i % 4 + 1):
                invitee_with_order(session, settings, inviter, sku)
        template_id = free.id
    return period_of("week", utcnow(), TZ), ids, template_id


def _coupons(factory: sessionmaker[Session], template_id: str) -> int:
    with factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Coupon).where(Coupon.template_id == template_id)
            )
            or 0
        )


def test_refunded_or_not_picked_up_first_orders_do_not_count(
    db_session: Session, settings: object
) -> None:
    sku = new_sku(db_session)
    inviter = make_user(db_session)
    _, counted = invitee_with_order(db_session, settings, inviter, sku)  # type: ignore[arg-type]
    invitee_with_order(db_session, settings, inviter, sku, picked_up=False)  # type: ignore[arg-type]
    _, refunded = invitee_with_order(db_session, settings, inviter, sku)  # type: ignore[arg-type]
    period = period_of("week", utcnow(), TZ)
    assert standings(db_session, period)[0].invites == 2
    refund_now(db_session, settings, refunded, 1, "partial")  # type: ignore[arg-type]
    assert [(s.user_id, s.invites) for s in standings(db_session, period)] == [(inviter.id, 1)]
    assert counted.picked_up_at is not None


def test_awarding_twice_mints_each_coupon_once(factory: sessionmaker[Session]) -> None:
    period, ids, template_id = _board(factory)
    after = period.end + timedelta(seconds=1)
    first = award_period(factory, "week", period, now=after)
    second = award_period(factory, "week", period, now=after)
    assert first == second == {"granted": 10}
    assert _coupons(factory, template_id) == 10
    with factory() as session:
        places = awards_of(session, period.key)
        assert [p.rank for p in places] == list(range(1, 11))
        assert all(p.invites >= places[i + 1].invites for i, p in enumerate(places[:-1]))
        # 12 inviters, three with one invite: the one who got there first keeps 10th place.
        winners = {p.user_id for p in places}
        assert ids[0] in winners and not {ids[4], ids[8]} & winners
        issued = session.scalar(
            select(func.count()).select_from(CouponEntry).where(CouponEntry.kind == "issued")
        )
        assert issued == 10


@pytest.mark.parametrize("die_at", ["decided", "granted:first", "granted:fifth"])
def test_a_worker_killed_between_steps_leaves_a_rerun_to_finish(
    factory: sessionmaker[Session], die_at: str
) -> None:
    period, _ids, template_id = _board(factory)
    after = period.end + timedelta(seconds=1)
    seen: list[str] = []

    def die(step: str) -> None:
        seen.append(step)
        grants = sum(1 for s in seen if s.startswith("granted"))
        if (
            (die_at == "decided" and step == "decided")
            or (die_at == "granted:first" and grants == 1)
            or (die_at == "granted:fifth" and grants == 5)
        ):
            raise Killed(step)

    with pytest.raises(Killed):
        award_period(factory, "week", period, now=after, between_steps=die)
    done_before = {"decided": 0, "granted:first": 1, "granted:fifth": 5}[die_at]
    assert _coupons(factory, template_id) == done_before
    assert award_period(factory, "week", period, now=after) == {"granted": 10}
    assert _coupons(factory, template_id) == 10


def test_standings_are_written_once_even_if_a_refund_changes_them_later(
    factory: sessionmaker[Session],
) -> None:
    period, _ids, template_id = _board(factory)
    after = period.end + timedelta(seconds=1)
    with pytest.raises(Killed):
        award_period(
            factory,
            "week",
            period,
            now=after,
            between_steps=lambda s: (_ for _ in ()).throw(Killed(s)),
        )
    with factory() as session:
        decided = [(a.rank, a.user_id) for a in awards_of(session, period.key)]
    assert award_period(factory, "week", period, now=after) == {"granted": 10}
    with factory() as session:
        assert [(a.rank, a.user_id) for a in awards_of(session, period.key)] == decided
    assert _coupons(factory, template_id) == 10


def test_two_jobs_at_once_grant_each_place_once(factory: sessionmaker[Session]) -> None:
    period, _ids, template_id = _board(factory)
    after = period.end + timedelta(seconds=1)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def job() -> None:
        barrier.wait()
        try:
            award_period(factory, "week", period, now=after)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert _coupons(factory, template_id) == 10
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(LeaderboardAward)) == 10


def test_the_beat_task_awards_last_week_once(factory: sessionmaker[Session]) -> None:
    from tuanbox.growth.tasks import award_ended

    settings = make_settings()
    period, _ids, template_id = _board(factory, inviters=3)
    last_week = period_of("week", period.start - timedelta(days=1), TZ)
    with factory() as session, session.begin():
        # Move the pickups into last week, as if the job ran on Monday.
        from tuanbox.orders.models import Order

        for order in session.scalars(select(Order).where(Order.picked_up_at.is_not(None))):
            order.picked_up_at = last_week.start + timedelta(hours=1)
            order.paid_at = last_week.start
        from tuanbox.growth.models import ReferralBinding

        for row in session.scalars(select(ReferralBinding)):
            row.bound_at = last_week.start - timedelta(hours=1)
    first = award_ended(factory, settings)
    second = award_ended(factory, settings)
    assert first[last_week.key] == second[last_week.key] == {"granted": 3}
    assert _coupons(factory, template_id) == 3
