"""Trying hard to break a capped campaign on real PostgreSQL: three processes of threads
joining the same groups (1 or 2 units, some twice), opening groups while the pool runs dry,
leaving, and orders expiring underneath, while an expiry scan and two closers run; then
payments, closing and the campaign's end. No group overfilled, no unit lost or made up."""

from __future__ import annotations

import multiprocessing
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import fixed_spec, make_shop, make_shoppers, pay
from tests.platform.groupbuy.stockcheck import check_campaign, check_sku
from tuanbox.audit.services import Actor
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.errors import TuanboxError
from tuanbox.groupbuy import pool, services
from tuanbox.groupbuy.closing import close_due_groups
from tuanbox.groupbuy.models import Campaign, Group, Member
from tuanbox.orders.models import Order
from tuanbox.orders.services import expire_unpaid

SHOPPER = Actor(id="system:test", role="system")
THREADS = 8


def storm(
    url: str, campaign_id: str, group_ids: list[str], users: list[str], seed: int
) -> Counter[str]:
    """One process's share: each user joins (or opens), maybe twice, maybe leaves."""
    engine = make_engine(url, pool_size=THREADS + 2, max_overflow=0)
    factory = make_session_factory(engine, make_settings(database_url=url))
    rng = random.Random(seed)
    plans = [(u, rng.choice(group_ids), rng.choice((1, 1, 2)), rng.random()) for u in users]
    go = threading.Event()

    def act(user: str, group_id: str, qty: int, luck: float) -> list[str]:
        go.wait(timeout=30)
        outcomes: list[str] = []
        try:
            with session_scope(factory) as s:
                if luck < 0.1:
                    services.open_group(
                        s, campaign_id=campaign_id, user_id=user, qty=qty, now=utcnow()
                    )
                else:
                    # Some orders lapse at once (1 s to pay): the expiry scan races the joins.
                    services.join_group(
                        s,
                        group_id=group_id,
                        user_id=user,
                        qty=qty,
                        now=utcnow(),
                        pay_timeout_s=1 if luck > 0.85 else None,
                    )
            outcomes.append("joined")
        except TuanboxError as exc:
            outcomes.append(exc.code)
        except DBAPIError as exc:  # a deadlock or a CHECK violation: the test fails on it
            outcomes.append(f"db:{type(exc.orig).__name__}")
        if 0.1 <= luck < 0.2:  # the same request again, as a retrying client would
            try:
                with session_scope(factory) as s:
                    services.join_group(s, group_id=group_id, user_id=user, qty=qty, now=utcnow())
                outcomes.append("joined-again")
            except TuanboxError as exc:
                outcomes.append(exc.code)
        if 0.2 <= luck < 0.4 and outcomes[0] == "joined":
            try:
                with session_scope(factory) as s:
                    services.leave_group(s, group_id=group_id, user_id=user, actor=SHOPPER)
                outcomes.append("left")
            except TuanboxError as exc:
                outcomes.append(f"leave:{exc.code}")
            except DBAPIError as exc:
                outcomes.append(f"db:{type(exc.orig).__name__}")
        return outcomes

    with ThreadPoolExecutor(THREADS) as threads:
        futures = [threads.submit(act, *plan) for plan in plans]
        go.set()
        counts: Counter[str] = Counter()
        for f in futures:
            counts.update(f.result())
    engine.dispose()
    return counts


def test_joins_opens_leaves_and_expiries_at_once_never_overfill_or_lose_a_unit(
    fresh_database: Callable[[], str], engines: Callable[..., Engine]
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = engines(url, pool_size=10, max_overflow=0)
    factory = make_session_factory(engine, settings)
    with session_scope(factory) as s:
        shop = make_shop(s, stock=1000)
        users = make_shoppers(s, 330)
        # Cap 90, groups of up to 6 (3 paid to succeed), 2 units a shopper at most: eight
        # groups opened now draw 48, and the pool runs dry while shoppers open more and
        # groups top up their chunks for 2-unit joins.
        campaign = services.create_campaign(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=fixed_spec(shop.sku_id, members=3, max_size=6, stock_cap=90, per_user_limit=2),
        )
        group_ids = [
            services.open_group(s, campaign_id=campaign.id, user_id=u, now=utcnow()).group.id
            for u in users[:8]
        ]
    shoppers = users[8:]
    stop = threading.Event()
    background: Counter[str] = Counter()

    def sweep() -> None:
        """The expiry scan and two closers, over and over while the storm lasts."""
        while not stop.is_set():
            try:
                expire_unpaid(factory, now=utcnow() + timedelta(seconds=2))
                close_due_groups(factory)
                background["sweeps"] += 1
            except DBAPIError as exc:
                background[f"db:{type(exc.orig).__name__}"] += 1

    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    for t in sweepers:
        t.start()
    spawn = multiprocessing.get_context("spawn")
    thirds = [shoppers[i::3] for i in range(3)]
    try:
        with spawn.Pool(2) as procs:
            remote = [
                procs.apply_async(storm, (url, campaign.id, group_ids, part, seed))
                for seed, part in enumerate(thirds[:2])
            ]
            local = storm(url, campaign.id, group_ids, thirds[2], 2)
            outcomes = local + sum((r.get(timeout=300) for r in remote), Counter())
    finally:
        stop.set()
        for t in sweepers:
            t.join(timeout=120)
    assert not [k for k in outcomes if k.startswith("db:")], outcomes
    assert not [k for k in background if k.startswith("db:")], background
    assert set(outcomes) <= {
        "joined", "joined-again", "left", "GROUP_FULL", "ALREADY_MEMBER",
        "INSUFFICIENT_STOCK", "leave:GROUP_CLOSED",
    }, outcomes  # fmt: skip
    # It really was contested: seats ran out, the pool ran dry, shoppers left.
    assert outcomes["joined"] > 40 and outcomes["GROUP_FULL"] > 0, outcomes
    assert outcomes["INSUFFICIENT_STOCK"] > 0 and outcomes["left"] > 0, outcomes
    assert outcomes["ALREADY_MEMBER"] > 0, outcomes

    # The last quick-lapsing orders expire; then the books must balance exactly.
    expire_unpaid(factory, now=utcnow() + timedelta(seconds=5))
    with session_scope(factory) as s:
        expired = s.scalar(select(func.count()).select_from(Order).where(Order.status == "expired"))
        assert expired, "no order lapsed under the storm"
        check_sku(s, shop.sku_id)
        check_campaign(s, campaign.id)
        for group in s.scalars(select(Group).where(Group.campaign_id == campaign.id)):
            members = s.scalars(select(Member.user_id).where(Member.group_id == group.id)).all()
            assert len(members) == len(set(members)) == group.seats_taken <= group.max_size

    # Members of every group with three or more pay; the deadline passes; two closers run.
    with session_scope(factory) as s:
        for group in s.scalars(select(Group).where(Group.campaign_id == campaign.id)).all():
            orders = s.scalars(
                select(Order.id).where(
                    Order.group_id == group.id, Order.status == "pending_payment"
                )
            ).all()
            if len(orders) >= 3:
                for order_id in orders:
                    assert pay(s, settings, order_id) == "applied"
    later = utcnow() + timedelta(days=2)
    closers = [threading.Thread(target=close_due_groups, args=(factory, later)) for _ in range(2)]
    for t in closers:
        t.start()
    for t in closers:
        t.join(timeout=120)
    with session_scope(factory) as s:
        statuses = Counter(
            s.scalars(select(Group.status).where(Group.campaign_id == campaign.id)).all()
        )
        assert set(statuses) <= {"confirmed", "failed"} and statuses["confirmed"] > 0, statuses
        check_sku(s, shop.sku_id)
        check_campaign(s, campaign.id)
    # The campaign ends: what is not with a confirmed member goes back to the SKU.
    with session_scope(factory) as s:
        ended = s.get(Campaign, campaign.id)
        assert ended is not None
        assert pool.close_ended_campaigns(s, now=ended.ends_at) == [campaign.id]
    with session_scope(factory) as s:
        parts = check_sku(s, shop.sku_id)
        confirmed = s.scalars(
            select(Order.qty)
            .join(Group, Group.id == Order.group_id)
            .where(Group.status == "confirmed", Order.status == "confirmed")
        ).all()
        assert parts == {
            "reserved": sum(confirmed),
            "pools": 0,
            "chunks": 0,
            "orders": sum(confirmed),
        }
