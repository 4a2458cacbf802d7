"""Drill: Redis lost (killed, restarted empty) during a flash sale; stock rebuilt from the DB."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, func, select

from tests.drills.support import Drill, OwnRedis
from tests.platform.groupbuy.factories import engines, make_shop, make_shoppers
from tests.support import wait_until
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.errors import DependencyUnavailableError, TuanboxError
from tuanbox.flashsale import reconcile, services
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale, Reservation
from tuanbox.orders.models import Order

__all__ = ["engines"]

CAP = 40
LIMIT = 2
SHOPPERS = 80


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.mark.slow
def test_redis_lost_during_a_flash_sale(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    own_redis: OwnRedis,
    drill: Drill,
) -> None:
    drill.title = "Redis restarted (empty) during a flash sale"
    engine = engines(fresh_database(), pool_size=12, max_overflow=0)
    factory = make_session_factory(engine)
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2.0, socket_connect_timeout=2.0)
    counters = FlashCounters(client, prefix="drill")
    with session_scope(factory) as s:
        shop = make_shop(s, stock=100)
        users = make_shoppers(s, SHOPPERS)
        now = utcnow()
        spec = services.SaleSpec(
            shop.sku_id,
            "drill",
            990,
            CAP,
            LIMIT,
            now - timedelta(minutes=1),
            now + timedelta(hours=1),
        )
        sale_id = services.create_sale(
            s, merchant_id=shop.merchant_id, actor_id=shop.staff_id, spec=spec
        ).id
    rng = random.Random(5)
    # Each shopper's requests: one Idempotency-Key per intent, retried until it gets an answer.
    intents = [(u, f"k{n}", rng.choice((1, 2))) for u in users for n in range(2)]
    rng.shuffle(intents)
    answers: dict[tuple[str, str], str] = {}
    retries: Counter[str] = Counter()
    lock = threading.Lock()
    fault_at = threading.Event()
    admitted = 0

    def buy(intent: tuple[str, str, int]) -> None:
        nonlocal admitted
        user, key, qty = intent
        while True:
            try:
                with factory() as s:
                    services.reserve(
                        s,
                        counters,
                        sale_id=sale_id,
                        user_id=user,
                        request_id=key,
                        qty=qty,
                        now=utcnow(),
                    )
                answer = "ok"
            except DependencyUnavailableError:
                with lock:
                    retries["redis unavailable"] += 1
                wait_until(lambda: own_redis.proc is not None, 60, "redis back")
                continue  # the client retries with the same key
            except TuanboxError as exc:
                answer = exc.code
            with lock:
                answers[(user, key)] = answer
                if answer == "ok":
                    admitted += qty
                    if admitted >= CAP // 3:
                        fault_at.set()
            return

    def fault() -> None:
        fault_at.wait(60)
        own_redis.kill()
        with session_scope(factory) as s:
            row = s.get(FlashSale, sale_id)
            sold = CAP - row.remaining if row is not None else "?"
        drill.fault(
            f"redis-server SIGKILLed and restarted without persistence ({sold}/{CAP} "
            "units reserved): every counter, per-user total and request key gone"
        )
        own_redis.start()

    breaker = threading.Thread(target=fault)
    breaker.start()
    with ThreadPoolExecutor(12) as pool:
        list(pool.map(buy, intents))
    breaker.join()
    with session_scope(factory) as s:
        reconcile.reconcile_all(
            s, counters, now=utcnow(), redis_now=counters.server_time(), grace_s=0
        )

    # Once the reconciler has run (beat does, every few seconds): every successful intent
    # retried (a client that never saw its answer) is answered from its reservation.
    replays: Counter[bool] = Counter()
    for user, key, qty in intents:
        if answers[(user, key)] == "ok":
            with factory() as s:
                got = services.reserve(
                    s,
                    counters,
                    sale_id=sale_id,
                    user_id=user,
                    request_id=key,
                    qty=qty,
                    now=utcnow(),
                )
            replays[got.replayed and got.qty == qty] += 1
    with session_scope(factory) as s:
        sale = s.get(FlashSale, sale_id)
        assert sale is not None
        active = int(
            s.scalar(
                select(func.coalesce(func.sum(Reservation.qty), 0)).where(
                    Reservation.sale_id == sale_id, Reservation.status == "active"
                )
            )
            or 0
        )
        per_key = s.execute(
            select(Reservation.request_id, func.count()).group_by(Reservation.request_id)
        ).all()
        per_user = dict(
            s.execute(
                select(Reservation.user_id, func.sum(Reservation.qty))
                .where(Reservation.status == "active")
                .group_by(Reservation.user_id)
            ).all()
        )
        orders = int(
            s.scalar(select(func.coalesce(func.sum(Order.qty), 0)).where(Order.kind == "flash"))
            or 0
        )
        held = s.scalar(
            select(func.coalesce(func.sum(Order.qty), 0)).where(Order.stock_held.is_(True))
        )
        sku = s.get(Sku, shop.sku_id)
        assert sku is not None
        remaining, reserved_on_sku = sale.remaining, sku.stock_reserved
    stock, _, _ = counters.snapshot(sale_id)
    ok_units = sum(qty for (u, k, qty) in intents if answers.get((u, k)) == "ok")
    drill.note(
        f"{len(intents)} purchase intents, {retries['redis unavailable']} retried "
        f"through the outage; answers {dict(Counter(answers.values()))}"
    )
    drill.check("replayed keys answered from their reservation", {True}, set(replays))
    drill.check("every intent answered", len(intents), len(answers))
    drill.check("units sold (DB active reservations) = cap: sold out, no oversell", CAP, active)
    drill.check("sale.remaining", 0, remaining)
    drill.check("units the shoppers were told they got", CAP, ok_units)
    drill.check("flash-order units", CAP, orders)
    drill.check("reservations per Idempotency-Key", {1}, {n for _, n in per_key})
    drill.check("no shopper over the limit", True, max(per_user.values()) <= LIMIT)
    drill.check("SKU stock reserved = remaining + held", remaining + held, reserved_on_sku)
    drill.check("Redis stock after rebuild+reconcile = DB remaining", remaining, stock)
    counters.close()
    drill.done()
