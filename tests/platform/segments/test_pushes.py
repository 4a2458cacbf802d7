"""Segment pushes on real PostgreSQL: a re-run sends nothing twice, the per-user limit holds
across pushes, coupons go through issue_to_users once, conversions are counted, and the
scheduled 深夜食堂 push goes out after 21:00 station time, once a day."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.coupons.support import template
from tests.platform.segments.support import generated_buyers, merchant_sku, paid_order
from tuanbox.catalog.models import Product
from tuanbox.coupons.models import Coupon
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.notifications.models import Notification
from tuanbox.segments import pushes, rfm, services
from tuanbox.segments.tasks import run_due
from tuanbox.settings import Settings


def _world(db_session: Session, n: int = 12) -> tuple[str, list[str], datetime]:
    now = utcnow()
    sku = merchant_sku(db_session)
    merchant = db_session.get(Product, sku.product_id).merchant_id  # type: ignore[union-attr]
    buyers = generated_buyers(db_session, sku, n, now, seed=11)
    rfm.recompute(db_session, now)
    return merchant, [b[0] for b in buyers], now


def _notices(db_session: Session, users: list[str]) -> int:
    return (
        db_session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.template == pushes.TEMPLATE, Notification.user_id.in_(users))
        )
        or 0
    )


def test_message_push_sends_once_and_is_rate_limited(
    db_session: Session, settings: Settings
) -> None:
    merchant, users, now = _world(db_session)
    seg = services.create(db_session, merchant, "all", {"kind": "rfm"})
    first = pushes.send(
        db_session,
        settings,
        merchant_id=merchant,
        segment_id=seg.id,
        kind="message",
        key="p1",
        message="深夜食堂开饭啦",
        now=now,
    )
    assert sorted(first.sent) == sorted(users) and not first.rate_limited
    again = pushes.send(
        db_session,
        settings,
        merchant_id=merchant,
        segment_id=seg.id,
        kind="message",
        key="p1",
        message="深夜食堂开饭啦",
        now=now + timedelta(minutes=1),
    )
    assert again.sent == [] and again.already == len(users)
    assert _notices(db_session, users) == len(users)
    # A second push within the window meets the limit (1 per day by default)...
    second = pushes.send(
        db_session,
        settings,
        merchant_id=merchant,
        segment_id=seg.id,
        kind="message",
        key="p2",
        message="again",
        now=now + timedelta(hours=1),
    )
    assert second.sent == [] and sorted(second.rate_limited) == sorted(users)
    assert _notices(db_session, users) == len(users)
    # ...a push after the window goes through.
    third = pushes.send(
        db_session,
        settings.model_copy(update={"push_per_user_limit": 1}),
        merchant_id=merchant,
        segment_id=seg.id,
        kind="message",
        key="p3",
        message="next day",
        now=now + timedelta(days=1, minutes=1),
    )
    assert sorted(third.sent) == sorted(users)
    stats = pushes.stats(db_session, merchant, second.push_id)
    assert (stats.sent, stats.rate_limited) == (0, len(users))


def test_wake_up_coupon_to_dormant_buyers_and_conversion(
    db_session: Session, settings: Settings
) -> None:
    merchant, _users, now = _world(db_session, 30)
    dormant = services.create(db_session, merchant, "dormant", {"kind": "dormant", "days": 30})
    sleepers = services.members(db_session, dormant, now)
    assert sleepers
    tpl = template(db_session)
    sent = pushes.send(
        db_session,
        settings,
        merchant_id=merchant,
        segment_id=dormant.id,
        kind="coupon",
        key="wake-1",
        coupon_template_id=tpl.id,
        now=now,
    )
    assert sorted(sent.sent) == sleepers
    rerun = pushes.send(
        db_session,
        settings,
        merchant_id=merchant,
        segment_id=dormant.id,
        kind="coupon",
        key="wake-1",
        coupon_template_id=tpl.id,
        now=now,
    )
    assert rerun.sent == []
    coupons = db_session.scalar(
        select(func.count()).select_from(Coupon).where(Coupon.template_id == tpl.id)
    )
    assert coupons == len(sleepers)
    # One sleeper buys within the window, one buys after it: one conversion.
    sku_id = db_session.scalars(select(Product.id).where(Product.merchant_id == merchant)).first()
    assert sku_id
    from tuanbox.catalog.models import Sku

    sku = db_session.scalars(select(Sku).where(Sku.product_id == sku_id)).one()
    paid_order(db_session, sku, sleepers[0], paid_at=now + timedelta(days=2), cents=990)
    if len(sleepers) > 1:
        paid_order(db_session, sku, sleepers[1], paid_at=now + timedelta(days=9), cents=990)
    db_session.flush()
    stats = pushes.stats(db_session, merchant, sent.push_id)
    assert (stats.sent, stats.converted) == (len(sleepers), 1)


def test_late_night_push_runs_after_21_station_time_once(
    db_session: Session, settings: Settings
) -> None:
    merchant, users, _ = _world(db_session, 5)
    seg = services.create(db_session, merchant, "all", {"kind": "rfm"})
    pushes.schedule(
        db_session,
        merchant,
        name="深夜食堂",
        segment_id=seg.id,
        kind="message",
        minute_of_day=21 * 60,
        message="深夜食堂: 宵夜 8 折",
    )
    # 20:59 and 21:30 in Asia/Shanghai (UTC+8).
    assert run_due(db_session, settings, datetime(2026, 12, 8, 12, 59, tzinfo=UTC)) == 0
    assert run_due(db_session, settings, datetime(2026, 12, 8, 13, 30, tzinfo=UTC)) == len(users)
    assert run_due(db_session, settings, datetime(2026, 12, 8, 15, 0, tzinfo=UTC)) == 0
    assert _notices(db_session, users) == len(users)


def test_two_runs_of_one_push_at_once_send_once(
    fresh_database: Callable[[], str], settings: Settings
) -> None:
    url = fresh_database()
    engine = make_engine(url, pool_size=4, max_overflow=0)
    factory = make_session_factory(engine, make_settings(database_url=url))
    local = settings.model_copy(update={"database_url": url})
    try:
        with factory() as session, session.begin():
            merchant, users, now = _world(session, 8)
            segment_id = services.create(session, merchant, "all", {"kind": "rfm"}).id
        barrier = threading.Barrier(2)
        sent: list[int] = []

        def run() -> None:
            with factory() as session, session.begin():
                barrier.wait()
                result = pushes.send(
                    session, local, merchant_id=merchant, segment_id=segment_id,
                    kind="message", key="race", message="hi", now=now,
                )  # fmt: skip
                sent.append(len(result.sent))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(sent) == [0, len(users)]
        with factory() as session:
            assert _notices(session, users) == len(users)
    finally:
        engine.dispose()
