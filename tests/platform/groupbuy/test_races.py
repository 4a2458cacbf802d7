"""Races against real PostgreSQL: hundreds of joins at a group of 5, and two closers at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import redis
from sqlalchemy import Engine, func, select

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import fixed_spec, make_shop, make_shoppers, pay, tiered_spec
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.errors import TuanboxError
from tuanbox.groupbuy import services
from tuanbox.groupbuy.closing import close_due_groups
from tuanbox.groupbuy.models import Group, Member
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund


def test_three_hundred_concurrent_joins_fill_exactly_five_seats(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    engine = engines(url, pool_size=40, max_overflow=0)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        shop = make_shop(s, stock=1000)
        users = make_shoppers(s, 300)
        campaign = services.create_campaign(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=fixed_spec(shop.sku_id, members=5),
        )
        group_id = services.open_group(
            s, campaign_id=campaign.id, user_id=users[0], now=utcnow()
        ).group.id
    # Redis is part of the stack under test: the same users also hammer a Redis counter of
    # attempts, so the run shows both services busy (the DB alone decides seats).
    r = redis.Redis.from_url(redis_url)
    attempts_key = f"t:gb:{group_id}:attempts"
    # A start gate: the first 40 joiners block here until every request is queued.
    go = threading.Event()

    def join(user: str) -> str:
        go.wait(timeout=30)
        r.incr(attempts_key)
        try:
            with session_scope(factory) as s:
                services.join_group(s, group_id=group_id, user_id=user, now=utcnow())
            return "joined"
        except TuanboxError as exc:
            return exc.code

    # Every user but the leader joins, and 100 of them twice (duplicate requests).
    candidates = users[1:] + users[1:101]
    with ThreadPoolExecutor(40) as pool:
        futures = [pool.submit(join, u) for u in candidates]
        go.set()
        outcomes = Counter(f.result() for f in futures)
    assert outcomes["joined"] == 4, outcomes
    assert set(outcomes) <= {"joined", "GROUP_FULL", "ALREADY_MEMBER"}, outcomes
    assert int(r.get(attempts_key) or 0) == len(candidates)
    r.delete(attempts_key)
    r.close()
    with session_scope(factory) as s:
        group = s.get(Group, group_id)
        assert group is not None and group.seats_taken == 5
        members = list(s.scalars(select(Member.user_id).where(Member.group_id == group_id)))
        assert len(members) == len(set(members)) == 5
        n_orders = s.scalar(
            select(func.count()).select_from(Order).where(Order.group_id == group_id)
        )
        sku = s.get(Sku, shop.sku_id)
        assert n_orders == 5 and sku is not None and sku.stock_reserved == 5
    engine.dispose()


def test_deadlines_survive_a_dead_worker_and_two_closers_close_each_group_once(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = engines(url)
    factory = make_session_factory(engine, settings)
    group_ids: list[str] = []
    with session_scope(factory) as s:
        shop = make_shop(s, stock=1000)
        campaign = services.create_campaign(
            s, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=tiered_spec(shop.sku_id)
        )
        # 12 groups: even ones reach the first tier (3 paid), odd ones have 2 paid + 1 unpaid.
        for g in range(12):
            users = make_shoppers(s, 3)
            opened = services.open_group(s, campaign_id=campaign.id, user_id=users[0], now=utcnow())
            group_ids.append(opened.group.id)
            joined = [opened] + [
                services.join_group(s, group_id=opened.group.id, user_id=u, now=utcnow())
                for u in users[1:]
            ]
            for j in joined[: 3 if g % 2 == 0 else 2]:
                pay(s, settings, j.order_id)
    # No worker ran while time passed: every deadline is still in the database.
    later = utcnow() + timedelta(days=2)
    results: list[list[str]] = []

    def closer() -> None:
        results.append([c.group_id for c in close_due_groups(factory, now=later, batch=3)])

    threads = [threading.Thread(target=closer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    closed = [g for batch in results for g in batch]
    assert sorted(closed) == sorted(group_ids)  # each group closed by exactly one closer
    assert close_due_groups(factory, now=later) == []  # and nothing is left to close
    with session_scope(factory) as s:
        statuses = Counter(s.scalars(select(Group.status)))
        assert statuses == {"confirmed": 6, "failed": 6}
        refunds = list(s.execute(select(Refund.order_id, Refund.amount_cents)))
        per_order = Counter(o for o, _ in refunds)
        assert max(per_order.values()) == 1  # one refund per order, never two
        assert len(refunds) == 6 * 2  # failed groups: their 2 paid members each
        unpaid = s.scalars(select(Order.status).where(Order.paid_cents == 0))
        assert set(unpaid) == {"cancelled"}
    engine.dispose()


def test_closer_skips_a_group_whose_order_a_webhook_holds(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = engines(url)
    factory = make_session_factory(engine, settings)
    with session_scope(factory) as s:
        shop = make_shop(s)
        campaign = services.create_campaign(
            s, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=tiered_spec(shop.sku_id)
        )
        opened = []
        for _ in range(2):
            users = make_shoppers(s, 3)
            first = services.open_group(s, campaign_id=campaign.id, user_id=users[0], now=utcnow())
            for u in users[1:]:
                services.join_group(s, group_id=first.group.id, user_id=u, now=utcnow())
            pay(s, settings, first.order_id)
            opened.append(first)
    later = utcnow() + timedelta(days=2)
    # Another transaction (a payment webhook, say) holds the first group's leader order.
    with factory() as webhook, webhook.begin():
        webhook.execute(select(Order.id).where(Order.id == opened[0].order_id).with_for_update())
        closed = close_due_groups(factory, now=later, batch=1)
        assert [c.group_id for c in closed] == [opened[1].group.id]
    # Once it let go, the next run closes the skipped group.
    assert [c.group_id for c in close_due_groups(factory, now=later)] == [opened[0].group.id]
    engine.dispose()
