"""Flash-sale reminders: told once, before the start, by the beat sweep — also run twice or at
once by two workers; never for a sale that has started."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, make_shoppers
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.flashsale import reminders
from tuanbox.flashsale import services as flash
from tuanbox.flashsale.models import Reminder
from tuanbox.notifications.models import Notification
from tuanbox.notifications.services import get_notifier
from tuanbox.settings import Settings


def _sale(session: Session, starts_at: datetime) -> str:
    shop = make_shop(session)
    spec = flash.SaleSpec(shop.sku_id, "Cherries", 500, 5, 1, starts_at,
                          starts_at + timedelta(minutes=30))  # fmt: skip
    return flash.create_sale(session, merchant_id=shop.merchant_id, actor_id=shop.staff_id,
                             spec=spec).id  # fmt: skip


def _told(session: Session, user_ids: list[str]) -> list[str]:
    return list(
        session.scalars(
            select(Notification.user_id).where(
                Notification.template == reminders.TEMPLATE, Notification.user_id.in_(user_ids)
            )
        )
    )


def test_told_once_within_the_lead_and_not_after_the_start(
    db_session: Session, settings: Settings
) -> None:
    now = utcnow()
    starts = now + timedelta(minutes=30)
    sale = _sale(db_session, starts)
    users = make_shoppers(db_session, 3)
    for user in users:
        reminders.ask(db_session, sale, user, now=now)
    reminders.ask(db_session, sale, users[0], now=now)  # a second press: still one row
    reminders.cancel(db_session, sale, users[2])
    rows = db_session.scalars(select(Reminder).where(Reminder.sale_id == sale)).all()
    assert sorted(r.user_id for r in rows) == sorted(users[:2])
    notifier = get_notifier(settings)
    lead = 10

    def sweep(at: datetime) -> int:
        return reminders.send_due(db_session, notifier, now=at, before_min=lead)

    assert sweep(starts - timedelta(minutes=lead + 1)) == 0  # too early
    assert sweep(starts - timedelta(minutes=lead - 1)) == 2
    assert sweep(starts - timedelta(minutes=lead - 2)) == 0  # once only
    assert sorted(_told(db_session, users)) == sorted(users[:2])
    payload = db_session.scalars(
        select(Notification.payload).where(Notification.user_id == users[0])
    ).one()
    assert payload["sale_id"] == sale and payload["title"] == "Cherries"
    assert all(r.sent_at is not None for r in rows)
    # A told reminder is history: cancelling afterwards leaves it.
    reminders.cancel(db_session, sale, users[0])
    assert reminders.is_asked(db_session, sale, users[0])


def test_a_sale_that_has_started_is_not_announced(db_session: Session, settings: Settings) -> None:
    now = utcnow()
    starts = now + timedelta(minutes=30)
    sale = _sale(db_session, starts)
    [user] = make_shoppers(db_session, 1)
    reminders.ask(db_session, sale, user, now=now)
    # The beat was down through the whole lead; by now the sale is on.
    notifier = get_notifier(settings)
    assert reminders.send_due(db_session, notifier, now=starts, before_min=10) == 0
    later = starts + timedelta(seconds=1)
    assert reminders.send_due(db_session, notifier, now=later, before_min=10) == 0
    assert _told(db_session, [user]) == []
    with pytest.raises(reminders.SaleStartedError):
        reminders.ask(db_session, sale, make_shoppers(db_session, 1)[0], now=starts)


@pytest.fixture
def own_db(
    fresh_database: Callable[[], str], engines: Callable[..., Engine]
) -> tuple[Settings, Engine]:
    url = fresh_database()
    return make_settings(database_url=url), engines(url)


def _seed(engine: Engine, settings: Settings, n: int) -> list[str]:
    factory = make_session_factory(engine, settings)
    with session_scope(factory) as s:
        # Due now: the sweep's lead (10 min by default) has begun.
        sale = _sale(s, utcnow() + timedelta(minutes=5))
        users = make_shoppers(s, n)
        for user in users:
            reminders.ask(s, sale, user, now=utcnow())
    return users


def _count_told(engine: Engine, users: list[str]) -> dict[str, int]:
    with Session(engine) as s:
        rows = s.execute(
            select(Notification.user_id, func.count())
            .where(Notification.template == reminders.TEMPLATE)
            .group_by(Notification.user_id)
        ).all()
    return {u: c for u, c in rows if u in users}


def test_the_beat_task_run_twice_tells_each_shopper_once(own_db: tuple[Settings, Engine]) -> None:
    import tuanbox.flashsale.tasks
    from tuanbox.worker.app import BEAT_SCHEDULE, create_celery

    settings, engine = own_db
    assert "flashsale.send_reminders" in BEAT_SCHEDULE
    users = _seed(engine, settings, 4)
    create_celery(settings)
    assert tuanbox.flashsale.tasks.send_reminders.apply().get() == 4
    assert tuanbox.flashsale.tasks.send_reminders.apply().get() == 0
    assert _count_told(engine, users) == dict.fromkeys(users, 1)


def test_two_sweeps_at_once_tell_each_shopper_once(own_db: tuple[Settings, Engine]) -> None:
    settings, engine = own_db
    users = _seed(engine, settings, 40)
    notifier = get_notifier(settings)
    factory = make_session_factory(engine, settings)
    # One sweep holds its batch uncommitted; the other must neither wait for it nor tell.
    with session_scope(factory) as first:
        assert reminders.send_due(first, notifier, now=utcnow(), before_min=10) == 40
        with session_scope(factory) as second:
            assert reminders.send_due(second, notifier, now=utcnow(), before_min=10) == 0
    assert _count_told(engine, users) == dict.fromkeys(users, 1)

    # And many whole sweeps started together (the task's own loop), over fresh rows.
    more = _seed(engine, settings, 40)
    from tuanbox.flashsale.tasks import remind

    start = threading.Barrier(4)
    totals: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(timeout=30)
            totals.append(remind(factory, settings))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and sum(totals) == 40
    assert _count_told(engine, more) == dict.fromkeys(more, 1)
