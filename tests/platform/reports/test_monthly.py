"""Whole months of a long range are read from `report_monthly_stations`: the by-station and
buyer answers equal the naive ones over raw orders for ranges that start and end inside
months, after the first refresh, after more changes (incremental) and after a rebuild."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.platform.reports import history
from tests.platform.reports.history import Shop, make_shop, step
from tuanbox.reports import naive, queries, rollup
from tuanbox.reports.models import MonthlyStationRollup

TZ = "Asia/Shanghai"
ORIGINAL = history.BASE
RANGES = [
    (date(2026, 10, 1), date(2026, 12, 31)),  # three whole months
    (date(2026, 10, 9), date(2026, 12, 17)),  # days, November, days
    (date(2026, 9, 20), date(2026, 11, 30)),  # days, October and November
    (date(2026, 11, 1), date(2026, 11, 30)),  # exactly one month
    (date(2026, 11, 3), date(2026, 11, 29)),  # no whole month: daily rows only
]


def test_spans_cut_a_range_into_days_and_whole_months() -> None:
    assert queries.spans(date(2026, 10, 9), date(2026, 12, 17)) == (
        [(date(2026, 10, 9), date(2026, 10, 31)), (date(2026, 12, 1), date(2026, 12, 17))],
        (date(2026, 11, 1), date(2026, 12, 1)),
    )
    assert queries.spans(date(2026, 2, 1), date(2026, 2, 28)) == (
        [],
        (date(2026, 2, 1), date(2026, 3, 1)),
    )
    assert queries.spans(date(2026, 2, 2), date(2026, 3, 30)) == (
        [(date(2026, 2, 2), date(2026, 3, 30))],
        None,
    )


def _history(session: Session, shop: Shop, rng: random.Random, steps: int) -> None:
    """Random business around three dates in three months (the history's BASE moved)."""
    for base in (
        datetime(2026, 10, 12, 12, tzinfo=UTC),
        ORIGINAL,
        datetime(2026, 12, 9, tzinfo=UTC),
    ):
        history.BASE = base
        try:
            for _ in range(steps):
                step(session, shop, rng)
        finally:
            history.BASE = ORIGINAL


def _check(session: Session, merchant_ids: list[str]) -> None:
    for m in merchant_ids:
        for first, last in RANGES:
            fast = queries.dashboard(session, m, first, last)
            parts = queries.dashboard_by_parts(session, m, first, last)
            slow = naive.dashboard(session, m, first, last, TZ)
            assert (fast.by_station, fast.buyers_by_station) == (
                slow.by_station,
                slow.buyers_by_station,
            ), (m, first, last)
            assert fast == slow and parts == slow


def test_monthly_rows_answer_like_the_raw_orders(db_session: Session) -> None:
    rng = random.Random(7)
    shop = make_shop(db_session, rng)
    _history(db_session, shop, rng, 120)
    tz = ZoneInfo(TZ)
    rollup.refresh(db_session, tz, overlap_s=0)
    months = set(db_session.scalars(select(MonthlyStationRollup.month).distinct()))
    assert {date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1)} <= months
    _check(db_session, shop.merchant_ids)
    _history(db_session, shop, rng, 40)  # more orders, payments, refunds: incremental
    rollup.refresh(db_session, tz, overlap_s=0)
    _check(db_session, shop.merchant_ids)
    before = db_session.scalar(select(func.count()).select_from(MonthlyStationRollup))
    rollup.rebuild(db_session, tz, date(2026, 8, 1), date(2027, 1, 31))
    assert db_session.scalar(select(func.count()).select_from(MonthlyStationRollup)) == before
    _check(db_session, shop.merchant_ids)
