"""Invite leaderboards per week or month, and their end-of-period awards, exactly once.

Awarding is two steps, each its own transaction: (1) the standings of the ended period are
written once as `leaderboard_awards` rows (unique period+rank and period+user; on PostgreSQL
under an advisory lock per period, so two jobs never mix their standings); (2) each pending
place gets its coupon (issue key `lb:{period}:{user}`) and is marked granted in the same
transaction. A rerun, a second worker or a crash between any two steps only finishes what is
left: the standings are never recomputed once written, and no coupon is minted twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.coupons.errors import CouponExpiredError
from tuanbox.coupons.services import issue_to_users
from tuanbox.db.base import utcnow
from tuanbox.db.engine import session_scope
from tuanbox.growth.errors import InvalidGrowthConfigError
from tuanbox.growth.models import LeaderboardAward, LeaderboardReward
from tuanbox.growth.qualify import qualifying

KINDS = ("week", "month")


@dataclass(frozen=True)
class Period:
    key: str  # week:2026-W49 | month:2026-12
    start: datetime
    end: datetime


def period_of(kind: str, at: datetime, tz: str) -> Period:
    """The week (ISO, Monday first) or month containing `at`, in the stations' time zone."""
    zone = ZoneInfo(tz)
    local = at.astimezone(zone).date()
    if kind == "week":
        first = local - timedelta(days=local.weekday())
        after = first + timedelta(days=7)
        year, week, _ = first.isocalendar()
        key = f"week:{year}-W{week:02d}"
    elif kind == "month":
        first = local.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        key = f"month:{first:%Y-%m}"
    else:
        raise InvalidGrowthConfigError("period kind must be week or month", field="kind")
    return Period(key, _midnight(first, zone), _midnight(after, zone))


def previous_period(kind: str, at: datetime, tz: str) -> Period:
    current = period_of(kind, at, tz)
    return period_of(kind, current.start - timedelta(seconds=1), tz)


def _midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class Standing:
    rank: int
    user_id: str
    invites: int


def standings(session: Session, period: Period, *, limit: int = 10) -> list[Standing]:
    """Most counted invitees first; ties go to whoever reached their count first, then id."""
    sub = qualifying(since=period.start, until=period.end).subquery()
    rows = session.execute(
        select(sub.c.inviter_id, func.count().label("n"), func.max(sub.c.counted_at).label("last"))
        .group_by(sub.c.inviter_id)
        .order_by(func.count().desc(), func.max(sub.c.counted_at), sub.c.inviter_id)
        .limit(limit)
    ).all()
    return [Standing(i + 1, row.inviter_id, int(row.n)) for i, row in enumerate(rows)]


def _lock_period(session: Session, key: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"leaderboard:{key}".encode()).digest()
        lock = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})


def decide(session: Session, period: Period, reward: LeaderboardReward, now: datetime) -> int:
    """Step 1: write the period's standings once; returns how many places exist."""
    _lock_period(session, period.key)
    existing = session.scalar(select(func.count()).where(LeaderboardAward.period == period.key))
    if existing:
        return int(existing)
    places = standings(session, period, limit=reward.top_n)
    for place in places:
        session.add(
            LeaderboardAward(
                period=period.key,
                rank=place.rank,
                user_id=place.user_id,
                invites=place.invites,
                template_id=reward.template_id,
                decided_at=now,
            )
        )
    session.flush()
    return len(places)


def grant_one(session: Session, award_id: int, now: datetime) -> str:
    """Step 2 for one place: its coupon and its status change commit together."""
    award = session.scalars(
        select(LeaderboardAward)
        .where(LeaderboardAward.id == award_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if award.status != "pending":
        return award.status
    try:
        result = issue_to_users(
            session,
            award.template_id,
            [award.user_id],
            f"lb:{award.period}",
            source="rule",
            actor_id="leaderboard",
            now=now,
        )
    except CouponExpiredError:
        award.status, award.detail = "skipped", "TEMPLATE_CLOSED"
        return award.status
    coupons = result.issued + result.replayed
    if coupons:
        award.status, award.coupon_id, award.granted_at = "granted", coupons[0].id, now
    else:
        award.status, award.detail = "skipped", result.skipped.get(award.user_id, "SKIPPED")[:64]
    return award.status


def award_period(
    factory: sessionmaker[Session],
    kind: str,
    period: Period,
    *,
    now: datetime | None = None,
    between_steps: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Decide and grant one ended period's rewards; safe to run any number of times.

    `between_steps(step)` is called after each committed step (tests make it raise there,
    as a worker killed at that point would stop)."""
    now = now or utcnow()
    if now < period.end:
        raise InvalidGrowthConfigError("the period has not ended yet", period=period.key)
    with session_scope(factory) as session:
        reward = session.get(LeaderboardReward, kind)
        if reward is None or not reward.active:
            return {}
        decide(session, period, reward, now)
    if between_steps:
        between_steps("decided")
    with session_scope(factory) as session:
        pending = list(
            session.scalars(
                select(LeaderboardAward.id)
                .where(LeaderboardAward.period == period.key, LeaderboardAward.status == "pending")
                .order_by(LeaderboardAward.rank)
            )
        )
    for award_id in pending:
        with session_scope(factory) as session:
            grant_one(session, award_id, now)
        if between_steps:
            between_steps(f"granted:{award_id}")
    with session_scope(factory) as session:
        rows = session.execute(
            select(LeaderboardAward.status, func.count())
            .where(LeaderboardAward.period == period.key)
            .group_by(LeaderboardAward.status)
        ).all()
    return {status: int(n) for status, n in rows}


def set_reward(
    session: Session, *, kind: str, template_id: str, top_n: int, active: bool, actor_id: str
) -> LeaderboardReward:
    if kind not in KINDS:
        raise InvalidGrowthConfigError("period kind must be week or month", field="kind")
    row = session.get(LeaderboardReward, kind)
    if row is None:
        row = LeaderboardReward(period_kind=kind, template_id=template_id, updated_by=actor_id)
        session.add(row)
    row.template_id, row.top_n, row.active, row.updated_by = template_id, top_n, active, actor_id
    session.flush()
    return row


def awards_of(session: Session, period_key: str) -> list[LeaderboardAward]:
    return list(
        session.scalars(
            select(LeaderboardAward)
            .where(LeaderboardAward.period == period_key)
            .order_by(LeaderboardAward.rank)
        )
    )
