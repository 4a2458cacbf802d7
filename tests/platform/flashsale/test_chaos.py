"""Reservations, expiries and an impatient reconciler at once: the DB never oversells and
Redis agrees with it once things settle."""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import redis
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError

from tests.platform.groupbuy.factories import make_shop, make_shoppers
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.errors import TuanboxError
from tuanbox.flashsale import reconcile, services
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale, Reservation, UserTotal
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition

CAP = 40


@pytest.mark.slow
def test_flash_sale_books_balance_under_chaos(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    engine = engines(url, pool_size=24, max_overflow=0)
    factory = make_session_factory(engine)
    counters = FlashCounters(redis.Redis.from_url(redis_url), prefix=f"t{uuid.uuid4().hex[:8]}")
    with session_scope(factory) as s:
        shop = make_shop(s, stock=100)
        users = make_shoppers(s, 120)
        now = utcnow()
        sale = services.create_sale(
            s,
            merchant_id=shop.merchant_id,
            actor_id=shop.staff_id,
            spec=services.SaleSpec(
                shop.sku_id,
                "chaos",
                990,
                CAP,
                2,
                now - timedelta(minutes=1),
                now + timedelta(hours=1),
            ),
        )
        sale_id = sale.id
    rng = random.Random(11)
    cache = services.TermsCache()
    outcomes: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    lock = threading.Lock()

    def note(kind: str, fn: Callable[[], object]) -> None:
        try:
            fn()
            result = f"{kind}:ok"
        except TuanboxError as exc:
            result = f"{kind}:{exc.code}"
        except DBAPIError as exc:
            with lock:
                failures[f"{kind}:{type(exc.orig).__name__}"] += 1
            return
        with lock:
            outcomes[result] += 1

    def buy(i: int) -> None:
        user = rng.choice(users)
        key = f"k{rng.randrange(400)}"  # keys repeat: duplicates and replays happen

        def work() -> None:
            with factory() as s:
                services.reserve(
                    s,
                    counters,
                    sale_id=sale_id,
                    user_id=user,
                    request_id=key,
                    qty=rng.choice((1, 2)),
                    now=utcnow(),
                    terms_cache=cache,
                )

        note("buy", work)

    def expire(_: int) -> None:
        with factory() as s:
            pending = list(
                s.scalars(
                    select(Order.id).where(Order.kind == "flash", Order.status == "pending_payment")
                )
            )
        if pending:
            order_id = rng.choice(pending)

            def work() -> None:
                with session_scope(factory) as s:
                    transition(
                        s, order_id, "expired", actor=Actor("system", "system"), reason="chaos"
                    )

            note("expire", work)

    def reconcile_now(_: int) -> None:
        def work() -> None:
            with session_scope(factory) as s:
                # grace 0: even requests still in flight are taken for orphans (the worst case)
                reconcile.reconcile_all(
                    s, counters, now=utcnow(), redis_now=counters.server_time(), grace_s=0
                )

        note("reconcile", work)

    jobs: list[tuple[Callable[[int], None], int]] = (
        [(buy, i) for i in range(300)]
        + [(expire, i) for i in range(40)]
        + [(reconcile_now, i) for i in range(15)]
    )
    rng.shuffle(jobs)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda job: job[0](job[1]), jobs))
    with session_scope(factory) as s:  # things settle: one last pass
        reconcile.reconcile_all(
            s, counters, now=utcnow(), redis_now=counters.server_time(), grace_s=0
        )

    assert not failures, (failures, outcomes)
    assert outcomes["buy:ok"] > 0 and outcomes["expire:ok"] > 0
    with session_scope(factory) as s:
        sale_row = s.get(FlashSale, sale_id)
        assert sale_row is not None
        active = s.scalar(
            select(func.coalesce(func.sum(Reservation.qty), 0)).where(
                Reservation.status == "active"
            )
        )
        assert sale_row.remaining + active == CAP and sale_row.remaining >= 0
        per_user = dict(
            s.execute(
                select(Reservation.user_id, func.sum(Reservation.qty))
                .where(Reservation.status == "active")
                .group_by(Reservation.user_id)
            ).all()
        )
        assert max(per_user.values(), default=0) <= 2
        totals = {u: q for u, q in s.execute(select(UserTotal.user_id, UserTotal.qty)) if q}
        assert totals == {u: int(q) for u, q in per_user.items()}
        held = s.scalar(
            select(func.coalesce(func.sum(Order.qty), 0)).where(Order.stock_held.is_(True))
        )
        sku = s.get(Sku, shop.sku_id)
        assert sku is not None and sku.stock_reserved == sale_row.remaining + held
        requests = set(
            s.scalars(select(Reservation.request_id).where(Reservation.status == "active"))
        )
        remaining = sale_row.remaining
    stock, redis_users, redis_requests = counters.snapshot(sale_id)
    assert stock == remaining and redis_users == totals and set(redis_requests) == requests
    counters.forget(sale_id)
    counters.close()
    engine.dispose()
