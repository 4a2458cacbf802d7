"""Held push recipients (over the per-user limit) are sent later, once their rate window has
room, exactly once however often or however concurrently the retry runs (real PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.coupons.support import template
from tests.platform.segments.support import generated_buyers, merchant_sku
from tuanbox.catalog.models import Product
from tuanbox.coupons.models import Coupon
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.notifications.models import Notification
from tuanbox.segments import pushes, rfm, services
from tuanbox.segments.models import PushRecipient, UserTag
from tuanbox.settings import Settings


def _world(session: Session, n: int) -> tuple[str, list[str], datetime]:
    now = utcnow()
    sku = merchant_sku(session)
    merchant = session.get(Product, sku.product_id).merchant_id  # type: ignore[union-attr]
    buyers = generated_buyers(session, sku, n, now, seed=5)
    rfm.recompute(session, now)
    return merchant, sorted(b[0] for b in buyers), now


def _statuses(session: Session, push_id: str) -> dict[str, int]:
    return dict(
        session.execute(
            select(PushRecipient.status, func.count())
            .where(PushRecipient.push_id == push_id)
            .group_by(PushRecipient.status)
        ).all()
    )


def _count(session: Session, query: object) -> int:
    return int(session.scalar(query) or 0)  # type: ignore[call-overload]


def test_held_coupon_push_is_sent_once_when_the_window_allows(
    db_session: Session, settings: Settings
) -> None:
    merchant, users, now = _world(db_session, 6)
    seg = services.create(db_session, merchant, "all", {"kind": "rfm"})
    tpl = template(db_session, per_user_limit=5)
    first = pushes.send(
        db_session, settings, merchant_id=merchant, segment_id=seg.id, kind="message",
        key="h1", message="早安", now=now,
    )  # fmt: skip
    assert sorted(first.sent) == users
    held = pushes.send(
        db_session, settings, merchant_id=merchant, segment_id=seg.id, kind="coupon",
        key="h2", coupon_template_id=tpl.id, now=now + timedelta(hours=1),
    )  # fmt: skip
    assert sorted(held.rate_limited) == users and held.sent == []
    coupons = select(func.count()).select_from(Coupon).where(Coupon.template_id == tpl.id)
    notices = (
        select(func.count())
        .select_from(Notification)
        .where(Notification.template == pushes.TEMPLATE, Notification.user_id.in_(users))
    )
    # Within the window of the first push: still held, nothing sent.
    early = pushes.retry_held(db_session, settings, now=now + timedelta(hours=2))
    assert (early.sent, early.still_held) == (0, len(users))
    assert _count(db_session, coupons) == 0
    # Once the window has passed: each held shopper gets the coupon and its notice...
    later = now + timedelta(days=1, minutes=1)
    done = pushes.retry_held(db_session, settings, now=later)
    assert (done.sent, done.still_held, done.skipped) == (len(users), 0, 0)
    assert _statuses(db_session, held.push_id) == {"sent": len(users)}
    assert _count(db_session, coupons) == len(users)
    assert _count(db_session, notices) == 2 * len(users)
    # ...exactly once: another retry, and a re-run of the push itself, send nothing.
    again = pushes.retry_held(db_session, settings, now=later + timedelta(minutes=1))
    assert (again.sent, again.still_held) == (0, 0)
    rerun = pushes.send(
        db_session, settings, merchant_id=merchant, segment_id=seg.id, kind="coupon",
        key="h2", coupon_template_id=tpl.id, now=later + timedelta(minutes=2),
    )  # fmt: skip
    assert rerun.sent == [] and rerun.already == len(users)
    assert _count(db_session, coupons) == len(users)
    assert _count(db_session, notices) == 2 * len(users)
    # The retried sends count toward the limit: a new push right after is held.
    third = pushes.send(
        db_session, settings, merchant_id=merchant, segment_id=seg.id, kind="message",
        key="h3", message="晚安", now=later + timedelta(minutes=3),
    )  # fmt: skip
    assert sorted(third.rate_limited) == users
    stats = pushes.stats(db_session, merchant, held.push_id)
    assert (stats.sent, stats.rate_limited) == (len(users), 0)


def test_held_shopper_who_left_the_segment_is_skipped_and_limits_hold_across_pushes(
    db_session: Session, settings: Settings
) -> None:
    merchant, users, now = _world(db_session, 3)
    settings = settings.model_copy(update={"push_window_s": 3600})
    for user in users:
        services.tag(db_session, merchant, user, "vip")
    seg = services.create(db_session, merchant, "vip", {"kind": "tag", "tag": "vip"})
    sends = []
    for n in range(3):
        sends.append(pushes.send(
            db_session, settings, merchant_id=merchant, segment_id=seg.id, kind="message",
            key=f"t{n}", message=f"第 {n} 条", now=now + timedelta(minutes=n),
        ))  # fmt: skip
    assert [len(s.rate_limited) for s in sends] == [0, 3, 3]
    db_session.execute(delete(UserTag).where(UserTag.user_id == users[0]))
    later = now + timedelta(minutes=60, seconds=30)
    # One push per shopper per window: the older held push goes now, the newer stays held.
    done = pushes.retry_held(db_session, settings, now=later)
    assert (done.sent, done.skipped) == (2, 2)  # users[0] skipped on both pushes
    assert _statuses(db_session, sends[1].push_id) == {"sent": 2, "skipped": 1}
    assert _statuses(db_session, sends[2].push_id) == {"rate_limited": 2, "skipped": 1}
    last = pushes.retry_held(db_session, settings, now=later + timedelta(minutes=60, seconds=30))
    assert last.sent == 2
    assert _statuses(db_session, sends[2].push_id) == {"sent": 2, "skipped": 1}


def test_two_retry_runs_at_once_send_each_held_recipient_once(
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
            for n, key in enumerate(("r1", "r2")):
                pushes.send(
                    session, local, merchant_id=merchant, segment_id=segment_id,
                    kind="message", key=key, message="hi", now=now + timedelta(minutes=n),
                )  # fmt: skip
        barrier = threading.Barrier(2)
        sent: list[int] = []

        def run() -> None:
            with factory() as session, session.begin():
                barrier.wait()
                result = pushes.retry_held(session, local, now=now + timedelta(days=1, hours=1))
                sent.append(result.sent)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(sent) == [0, len(users)]
        with factory() as session:
            count = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.template == pushes.TEMPLATE)
            )
            assert count == 2 * len(users)
    finally:
        engine.dispose()
