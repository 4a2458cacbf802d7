"""The dashboard's rollup queries give the same answers as the naive ones over raw orders."""

from __future__ import annotations

import random
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from tests.platform.reports.history import make_shop, step
from tuanbox.reports import naive, queries, rollup
from tuanbox.reports.models import CampaignViews

TZ = "Asia/Shanghai"


@pytest.mark.parametrize("seed", range(3))
def test_dashboard_from_rollups_equals_the_naive_answer(db_session: Session, seed: int) -> None:
    rng = random.Random(100 + seed)
    shop = make_shop(db_session, rng)
    for _ in range(200):
        step(db_session, shop, rng)
    for m in shop.merchant_ids:
        for c in shop.campaigns[m][:1] + shop.sales[m][:1]:
            for d in (18, 19, 22):
                db_session.add(
                    CampaignViews(
                        merchant_id=m, day=date(2026, 11, d), campaign_id=c, views=rng.randrange(50)
                    )
                )
    db_session.flush()
    rollup.refresh(db_session, ZoneInfo(TZ), overlap_s=0)
    ranges = [(date(2026, 11, 1), date(2026, 11, 30)), (date(2026, 11, 18), date(2026, 11, 21))]
    for m in shop.merchant_ids:
        compare = (shop.campaigns[m][0], shop.sales[m][0])
        for first, last in ranges:
            fast = queries.dashboard(db_session, m, first, last, compare)  # GROUPING SETS
            parts = queries.dashboard_by_parts(db_session, m, first, last, compare)
            slow = naive.dashboard(db_session, m, first, last, TZ, compare)
            assert fast == slow
            assert parts == slow
            assert fast.totals.orders > 0 or first.day == 18
    # Another merchant's numbers never leak in.
    a, b = shop.merchant_ids[:2]
    assert queries.totals(db_session, a, *ranges[0]) != queries.totals(db_session, b, *ranges[0])
