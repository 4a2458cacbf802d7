"""Proof: 2,000 concurrent buyers for 100 units through the real HTTP API never oversell."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
import redis
from sqlalchemy import Engine, func, select

from tests.conftest import make_settings
from tests.platform.groupbuy.factories import auth, make_shop, make_shoppers
from tests.platform.groupbuy.server import running_api
from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale, Reservation, UserTotal
from tuanbox.orders.models import Order

BUYERS = 2000
UNITS = 100


@pytest.mark.slow
def test_two_thousand_buyers_one_hundred_units(
    fresh_database: Callable[[], str], engines: Callable[..., Engine], redis_url: str
) -> None:
    url = fresh_database()
    settings = make_settings(
        database_url=url,
        redis_url=redis_url,
        rate_limit_prefix=f"t{uuid.uuid4().hex[:8]}:rl:",
        flash_per_ip_per_10s=10**6,  # every buyer shares 127.0.0.1 here
        flash_per_user_per_10s=3,
    )
    engine = engines(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as s:
        shop = make_shop(s, stock=500)
        # 1,500 shoppers; 500 of them try twice with different keys (limit is 1 each).
        users = make_shoppers(s, 1500)
    staff = auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id)
    attempts = [(users[i % 1500], f"req-{i:05d}") for i in range(BUYERS)]
    headers = {u: auth(settings, u) for u in users}

    with running_api(settings) as base:
        now = utcnow()
        created = httpx.post(
            f"{base}/api/v1/flash-sales",
            headers=staff,
            json={
                "sku_id": shop.sku_id,
                "title": "midnight durian",
                "price_cents": 990,
                "stock_cap": UNITS,
                "per_user_limit": 1,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
            },
        )
        assert created.status_code == 201, created.text
        sale_id = created.json()["id"]

        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        with httpx.Client(base_url=base, limits=limits, timeout=60) as client:

            def buy(attempt: tuple[str, str]) -> tuple[int, str, str]:
                user, key = attempt
                r = client.post(
                    f"/api/v1/flash-sales/{sale_id}/reservations",
                    headers={**headers[user], "Idempotency-Key": key},
                    json={"qty": 1},
                )
                return r.status_code, r.json().get("code", ""), user

            with ThreadPoolExecutor(128) as pool:
                results = list(pool.map(buy, attempts))
            # A repeated key replays the first answer instead of buying again.
            winner_user, winner_key = next(
                a for a, r in zip(attempts, results, strict=True) if r[0] == 201
            )
            again = client.post(
                f"/api/v1/flash-sales/{sale_id}/reservations",
                headers={**headers[winner_user], "Idempotency-Key": winner_key},
                json={"qty": 1},
            )
            assert again.status_code == 201 and again.json()["replayed"] is True

    statuses = Counter((code, problem) for code, problem, _ in results)
    assert statuses[(201, "")] == UNITS, statuses
    assert set(statuses) <= {(201, ""), (409, "SOLD_OUT"), (409, "USER_LIMIT_EXCEEDED")}, statuses
    winners = Counter(user for code, _, user in results if code == 201)
    assert max(winners.values()) == 1

    with session_scope(factory) as s:
        sale = s.get(FlashSale, sale_id)
        assert sale is not None and sale.remaining == 0
        n_orders = s.scalar(select(func.count()).select_from(Order).where(Order.kind == "flash"))
        assert n_orders == UNITS
        per_user = dict(
            s.execute(select(Order.user_id, func.sum(Order.qty)).group_by(Order.user_id)).all()
        )
        assert max(per_user.values()) == 1 and sum(per_user.values()) == UNITS
        sku = s.get(Sku, shop.sku_id)
        assert sku is not None and sku.stock_reserved == UNITS
        db_totals = {u: q for u, q in s.execute(select(UserTotal.user_id, UserTotal.qty)) if q}
        db_reqs = set(
            s.scalars(select(Reservation.request_id).where(Reservation.status == "active"))
        )

    counters = FlashCounters(redis.Redis.from_url(redis_url))
    try:
        stock, redis_users, redis_reqs = counters.snapshot(sale_id)
    finally:
        counters.forget(sale_id)
        counters.close()
    assert stock == 0
    assert redis_users == db_totals
    assert set(redis_reqs) == db_reqs
    engine.dispose()
