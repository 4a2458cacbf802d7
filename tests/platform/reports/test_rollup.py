"""Rollups kept by the incremental refresh equal a recomputation from the raw orders."""

from __future__ import annotations

import random
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.reports.history import (
    BASE,
    make_shop,
    reference,
    reference_buyers,
    step,
    stored,
    stored_buyers,
)
from tuanbox.orders.models import Order
from tuanbox.reports import rollup
from tuanbox.reports.models import Watermark

TZ = ZoneInfo("Asia/Shanghai")
FIRST, LAST = date(2026, 11, 10), date(2026, 11, 30)


def _check(session: Session, merchants: list[str]) -> None:
    assert stored(session, merchants) == reference(session, merchants)
    assert stored_buyers(session, merchants) == reference_buyers(session, merchants)


@pytest.mark.parametrize("seed", range(6))
def test_incremental_refresh_matches_recomputation_over_random_histories(
    db_session: Session, seed: int
) -> None:
    rng = random.Random(seed)
    shop = make_shop(db_session, rng)
    done: dict[str, int] = {}
    for n in range(160):
        what = step(db_session, shop, rng)
        done[what] = done.get(what, 0) + 1
        db_session.flush()
        if rng.random() < 0.15:
            # No overlap: the watermark alone must catch every change.
            rollup.refresh(db_session, TZ, overlap_s=0)
            _check(db_session, shop.merchant_ids)
        if n == 80:
            # A rebuild from scratch in the middle changes nothing either.
            before = stored(db_session, shop.merchant_ids)
            rollup.refresh(db_session, TZ, overlap_s=0)
            rollup.rebuild(db_session, TZ, FIRST, LAST)
            assert stored(db_session, shop.merchant_ids) == reference(db_session, shop.merchant_ids)
            assert before.keys() <= reference(db_session, shop.merchant_ids).keys() | set()
    rollup.refresh(db_session, TZ, overlap_s=0)
    _check(db_session, shop.merchant_ids)
    # The history really exercised late payments, refunds and group outcomes.
    assert done.get("refund", 0) > 3 and done.get("pay", 0) > 3 and done.get("group", 0) > 1


def test_late_refund_updates_its_own_day_not_today(db_session: Session) -> None:
    rng = random.Random(99)
    shop = make_shop(db_session, rng, merchants=1, users=2)
    m = shop.merchant_ids[0]
    placed = BASE - timedelta(days=3)
    order = Order(
        user_id=shop.users[0],
        merchant_id=m,
        sku_id=shop.skus[m],
        qty=2,
        unit_price_cents=500,
        total_cents=1000,
        paid_cents=1000,
        paid_at=placed,
        status="paid",
        created_at=placed,
    )
    db_session.add(order)
    db_session.flush()
    rollup.refresh(db_session, TZ, overlap_s=0)
    day = (placed + timedelta(hours=8)).date()
    keys = [("campaign", m, day, ""), ("station", m, day, "")]
    placed_only = {"orders": 1, "paid_orders": 1, "gmv_cents": 1000}
    assert stored(db_session, [m]) == dict.fromkeys(keys, placed_only)
    order.refunded_cents = 400
    db_session.flush()
    result = rollup.refresh(db_session, TZ, overlap_s=0)
    assert result.days_recomputed == 1
    refunded = {**placed_only, "refunded_orders": 1, "refund_cents": 400}
    assert stored(db_session, [m]) == dict.fromkeys(keys, refunded)


def test_refresh_is_idempotent_and_a_crash_midway_leaves_nothing_half_done(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    shop = make_shop(db_session, rng)
    for _ in range(60):
        step(db_session, shop, rng)
    db_session.flush()
    rollup.refresh(db_session, TZ, overlap_s=0)
    first = stored(db_session, shop.merchant_ids)
    mark = db_session.get(Watermark, rollup.WATERMARK)
    assert mark is not None
    at = mark.at
    # Twice in a row: same rows, nothing read again.
    again = rollup.refresh(db_session, TZ, overlap_s=0)
    assert again.orders_read == 0 and stored(db_session, shop.merchant_ids) == first
    # With an overlap, orders are read again and recomputed to the same rows.
    overlapped = rollup.refresh(db_session, TZ, overlap_s=3600)
    assert overlapped.orders_read > 0 and stored(db_session, shop.merchant_ids) == first

    for _ in range(60):
        step(db_session, shop, rng)
    db_session.flush()
    calls = 0
    real = rollup.store_day

    def crash_on_third(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("worker lost")
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollup, "store_day", crash_on_third)
    with pytest.raises(RuntimeError), db_session.begin_nested():
        rollup.refresh(db_session, TZ, overlap_s=0)
    db_session.expire_all()
    assert stored(db_session, shop.merchant_ids) == first  # the earlier state, whole
    mark = db_session.get(Watermark, rollup.WATERMARK)
    assert mark is not None and mark.at == at
    monkeypatch.setattr(rollup, "store_day", real)
    rollup.refresh(db_session, TZ, overlap_s=0)
    _check(db_session, shop.merchant_ids)
    assert stored(db_session, shop.merchant_ids) != first


def test_buyer_first_day_moving_earlier_reclassifies_the_old_day(db_session: Session) -> None:
    rng = random.Random(3)
    shop = make_shop(db_session, rng, merchants=1, users=1)
    m, u = shop.merchant_ids[0], shop.users[0]

    def order(days_ago: int, paid: bool) -> Order:
        at = BASE - timedelta(days=days_ago)
        o = Order(
            user_id=u,
            merchant_id=m,
            sku_id=shop.skus[m],
            qty=1,
            unit_price_cents=100,
            total_cents=100,
            paid_cents=100 if paid else 0,
            paid_at=at if paid else None,
            created_at=at,
        )
        db_session.add(o)
        db_session.flush()
        return o

    early = order(4, paid=False)
    order(1, paid=True)
    rollup.refresh(db_session, TZ, overlap_s=0)
    assert sorted(stored_buyers(db_session, [m]).values()) == [(1, 0)]
    # The earlier order is paid late: the buyer was new then, and is repeat on the later day.
    early.paid_at, early.paid_cents = BASE, 100
    db_session.flush()
    rollup.refresh(db_session, TZ, overlap_s=0)
    assert sorted(stored_buyers(db_session, [m]).values()) == [(0, 1), (1, 0)]
    _check(db_session, [m])
    assert db_session.scalar(select(Watermark.at)) is not None
