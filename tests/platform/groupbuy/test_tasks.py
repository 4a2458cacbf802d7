"""The beat tasks, run as Celery tasks in-process: deadline scan and flash-sale reconciliation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import redis
from sqlalchemy import Engine, select, update

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, make_shoppers, pay, tiered_spec
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.flashsale import services as flash
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.groupbuy import services
from tuanbox.groupbuy.models import Group
from tuanbox.payments.models import Refund
from tuanbox.worker.app import BEAT_SCHEDULE, create_celery


def test_beat_schedule_lists_both_jobs() -> None:
    assert BEAT_SCHEDULE["groupbuy.close_due_groups"]["task"] == "groupbuy.close_due_groups"
    assert BEAT_SCHEDULE["flashsale.reconcile"]["task"] == "flashsale.reconcile"


def test_tasks_close_due_groups_and_reconcile(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url, redis_url=redis_url)
    engine = engines(url)
    factory = make_session_factory(engine, settings)  # paying runs hooks that need them
    now = utcnow()
    with session_scope(factory) as s:
        shop = make_shop(s)
        user = make_shoppers(s, 1)[0]
        campaign = services.create_campaign(
            s, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=tiered_spec(shop.sku_id)
        )
        opened = services.open_group(s, campaign_id=campaign.id, user_id=user, now=now)
        pay(s, settings, opened.order_id)
        # The worker was down past the deadline; the deadline itself is in the database.
        s.execute(
            update(Group)
            .where(Group.id == opened.group.id)
            .values(deadline_at=now - timedelta(hours=1))
        )
        sale = flash.create_sale(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=flash.SaleSpec(
                shop.sku_id, "x", 100, 5, 1, now - timedelta(minutes=1), now + timedelta(hours=1)
            ),
        )
        sale_id = sale.id
    counters = FlashCounters(redis.Redis.from_url(redis_url))
    counters.load(sale_id, remaining=42, users={}, requests={})  # drifted
    celery = create_celery(settings)
    import tuanbox.flashsale.tasks
    import tuanbox.groupbuy.tasks

    assert tuanbox.groupbuy.tasks.close_due_groups.apply().get() == 1
    assert tuanbox.groupbuy.tasks.close_due_groups.apply().get() == 0
    assert tuanbox.flashsale.tasks.reconcile.apply().get() >= 1
    assert counters.snapshot(sale_id)[0] == 5
    with session_scope(factory) as s:
        group = s.get(Group, opened.group.id)
        assert group is not None and group.status == "failed"
        assert list(
            s.scalars(select(Refund.amount_cents).where(Refund.order_id == opened.order_id))
        ) == [900]
    counters.forget(sale_id)
    counters.close()
    celery.close()
    engine.dispose()
