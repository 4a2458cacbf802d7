"""Joins, payments, expiries, leaves and closers all at once: no deadlock, invariants hold."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import make_shop, make_shoppers, pay, tiered_spec
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.errors import TuanboxError
from tuanbox.groupbuy import services
from tuanbox.groupbuy.closing import close_due_groups
from tuanbox.groupbuy.models import Group, Member
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.models import Refund


@pytest.mark.slow
def test_everything_at_once_keeps_the_books_straight(
    fresh_database: Callable[[], str], engines: Callable[..., Engine]
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = engines(url, pool_size=24, max_overflow=0)
    factory = make_session_factory(engine, settings)
    with session_scope(factory) as s:
        shop = make_shop(s, stock=500)
        users = make_shoppers(s, 80)
        campaign = services.create_campaign(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=tiered_spec(shop.sku_id, group_ttl_s=60),
        )
        group_ids = [
            services.open_group(s, campaign_id=campaign.id, user_id=u, now=utcnow()).group.id
            for u in users[:8]
        ]
    rng = random.Random(7)
    deadlocks: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def note(kind: str, fn: Callable[[], object]) -> None:
        try:
            fn()
            result = f"{kind}:ok"
        except TuanboxError as exc:
            result = f"{kind}:{exc.code}"
        except DBAPIError as exc:  # a deadlock or serialization failure would land here
            with lock:
                deadlocks[f"{kind}:{type(exc.orig).__name__}"] += 1
            return
        with lock:
            outcomes[result] += 1

    def pending_orders() -> list[str]:
        with factory() as s:
            return list(
                s.scalars(
                    select(Order.id).where(Order.status == "pending_payment", Order.kind == "group")
                )
            )

    def join(i: int) -> None:
        def work() -> None:
            with session_scope(factory) as s:
                services.join_group(
                    s, group_id=rng.choice(group_ids), user_id=users[8 + i % 72], now=utcnow()
                )

        note("join", work)

    def pay_some(_: int) -> None:
        candidates = pending_orders()
        if candidates:
            order_id = rng.choice(candidates)

            def work() -> None:
                with session_scope(factory) as s:
                    pay(s, settings, order_id)

            note("pay", work)

    def expire_some(_: int) -> None:
        candidates = pending_orders()
        if candidates:
            order_id = rng.choice(candidates)

            def work() -> None:
                with session_scope(factory) as s:
                    transition(
                        s, order_id, "expired", actor=Actor("system", "system"), reason="chaos"
                    )

            note("expire", work)

    def leave(i: int) -> None:
        def work() -> None:
            with session_scope(factory) as s:
                member = s.scalars(select(Member).where(Member.paid.is_(False)).limit(1)).first()
                if member is not None:
                    services.leave_group(
                        s,
                        group_id=member.group_id,
                        user_id=member.user_id,
                        actor=Actor(member.user_id, "shopper"),
                    )

        note("leave", work)

    def close(i: int) -> None:
        # Half-way through, the closers' clock passes every deadline.
        later = utcnow() + timedelta(seconds=0 if i < 10 else 120)
        note("close", lambda: close_due_groups(factory, now=later, batch=2))

    jobs: list[tuple[Callable[[int], None], int]] = (
        [(join, i) for i in range(120)]
        + [(pay_some, i) for i in range(80)]
        + [(expire_some, i) for i in range(30)]
        + [(leave, i) for i in range(15)]
        + [(close, i) for i in range(20)]
    )
    rng.shuffle(jobs)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda job: job[0](job[1]), jobs))
    close_due_groups(factory, now=utcnow() + timedelta(seconds=120))

    assert not deadlocks, (deadlocks, outcomes)
    with session_scope(factory) as s:
        for group in s.scalars(select(Group)):
            members = list(s.scalars(select(Member).where(Member.group_id == group.id)))
            assert group.status in ("confirmed", "failed"), group.status
            assert group.seats_taken == len(members) <= group.max_size
            assert group.paid_count == sum(m.paid for m in members)
            statuses = set(s.scalars(select(Order.status).where(Order.group_id == group.id)))
            allowed = (
                {"confirmed", "cancelled", "expired", "refunded"}
                if group.status == "confirmed"
                else {"cancelled", "expired", "refunded"}
            )
            assert statuses <= allowed, (group.status, statuses)
        held = s.scalar(
            select(func.coalesce(func.sum(Order.qty), 0)).where(Order.stock_held.is_(True))
        )
        sku = s.get(Sku, shop.sku_id)
        assert sku is not None and sku.stock_reserved == held
        per_order = Counter(s.scalars(select(Refund.key)))
        assert max(per_order.values(), default=1) == 1
    assert outcomes["join:ok"] > 0 and outcomes["pay:ok"] > 0
    engine.dispose()
