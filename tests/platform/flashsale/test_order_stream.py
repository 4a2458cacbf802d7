"""Stream order writes: winners' orders durable exactly once through consumer crashes,
duplicate deliveries and Redis restarts; after a Redis loss the DB is reloaded, no oversell."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from tests.conftest import make_settings
from tests.drills.support import OwnRedis
from tests.platform.groupbuy.factories import auth, make_shop, make_shoppers
from tests.support import wait_until
from tuanbox.api.app import create_app
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory, session_scope
from tuanbox.flashsale import lua, reconcile
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale, Reservation
from tuanbox.flashsale.orderstream import GROUP, OrderStreamConsumer
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

CAP = 100
pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Callable[..., OwnRedis]]:
    made: list[OwnRedis] = []

    def make(*, aof: bool = False) -> OwnRedis:
        server = OwnRedis(tmp_path / f"redis{len(made)}", aof=aof)
        server.root.mkdir()
        server.start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()


class Sale:
    """A running flash sale of CAP units on its own database, sold through the HTTP API."""

    def __init__(self, settings: Settings, engine: Engine, shoppers: int) -> None:
        self.settings = settings
        self.factory = make_session_factory(engine, settings)
        with session_scope(self.factory) as s:
            shop = make_shop(s, stock=CAP + 50)
            self.users = make_shoppers(s, shoppers)
        self.client = TestClient(create_app(settings, engine=engine))
        self.client.__enter__()
        now = utcnow()
        created = self.client.post(
            "/api/v1/flash-sales",
            headers=auth(settings, shop.staff_id, "merchant_staff", shop.merchant_id),
            json={
                "sku_id": shop.sku_id,
                "title": "midnight durian",
                "price_cents": 990,
                "stock_cap": CAP,
                "per_user_limit": 1,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
            },
        )
        assert created.status_code == 201, created.text
        self.id: str = created.json()["id"]
        self.answers: dict[str, dict[str, Any]] = {}  # user -> the 201 body

    def buy(self, users: list[str]) -> Counter[str]:
        """Each user reserves one unit; a 503 (Redis restarting) is retried with the same key."""
        seen: Counter[str] = Counter()
        for user in users:
            key = f"buy-{user}"

            def answered(user: str = user, key: str = key) -> Any:
                got = self._post(user, key)
                return got if got.status_code != 503 else None

            r = wait_until(answered, 15, "an answer other than 503")
            seen[str(r.status_code) + ":" + r.json().get("code", "")] += 1
            if r.status_code == 201:
                self.answers[user] = r.json()
        return seen

    def _post(self, user: str, key: str) -> Any:
        return self.client.post(
            f"/api/v1/flash-sales/{self.id}/reservations",
            headers={**auth(self.settings, user), "Idempotency-Key": key},
            json={"qty": 1},
        )

    def reservations(self) -> int:
        with self.factory() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(Reservation)
                    .where(Reservation.sale_id == self.id)
                )
                or 0
            )

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def check_books(self, redis_url: str) -> None:
        """Every 201 has exactly its reservation and order (the ids it was given), nothing
        else was sold, and Redis agrees with the DB."""
        with self.factory() as s:
            rows = s.execute(
                select(Reservation.user_id, Reservation.id, Reservation.order_id).where(
                    Reservation.sale_id == self.id, Reservation.status == "active"
                )
            ).all()
            orders = s.scalar(
                select(func.count())
                .select_from(Order)
                .where(Order.id.in_([r.order_id for r in rows]))
            )
            sale = s.get(FlashSale, self.id)
            assert sale is not None
            remaining = sale.remaining
        assert len(rows) == len(self.answers) == orders
        assert {r.user_id: (r.id, r.order_id) for r in rows} == {
            u: (a["reservation_id"], a["order_id"]) for u, a in self.answers.items()
        }
        assert remaining == CAP - len(rows) >= 0
        counters = FlashCounters(redis.Redis.from_url(redis_url))
        try:
            stock, users, _ = counters.snapshot(self.id)
            assert stock == remaining and sum(users.values()) == len(rows)
        finally:
            counters.close()


def stream_settings(url: str, redis_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "redis_url": redis_url,
        "rate_limit_prefix": f"t{uuid.uuid4().hex[:8]}:rl:",
        "flash_order_writes": "stream",
        "flash_per_ip_per_10s": 10**6,
    }
    return make_settings(**{**values, **extra})


def consumer_env(settings: Settings) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("TUANBOX_")}
    return {
        **keep,
        "TUANBOX_ENV": "test",
        "TUANBOX_LOG_FORMAT": "console",
        "TUANBOX_DATABASE_URL": settings.database_url,
        "TUANBOX_REDIS_URL": settings.redis_url,
        "TUANBOX_SECRET_KEY": settings.secret_key.get_secret_value(),
        "TUANBOX_PII_KEY": settings.pii_key.get_secret_value(),
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": settings.payment_webhook_secret.get_secret_value(),
        "TUANBOX_FLASH_ORDER_WRITES": "stream",
        "TUANBOX_FLASH_STREAM_BATCH": "10",
    }


def start_consumer(settings: Settings, name: str) -> subprocess.Popen[bytes]:
    tuanbox = Path(sys.executable).with_name("tuanbox")
    return subprocess.Popen(
        [str(tuanbox), "flash-orders", "--name", name], env=consumer_env(settings)
    )


def test_winners_orders_survive_a_consumer_killed_mid_batch(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    own_redis: Callable[..., OwnRedis],
) -> None:
    server = own_redis()
    url = fresh_database()
    settings = stream_settings(url, server.url)
    engine = engines(url)
    sale = Sale(settings, engine, shoppers=CAP + 20)
    consumer = start_consumer(settings, "drill")
    try:
        assert sale.buy(sale.users[:60]) == {"201:": 60}
        wait_until(lambda: sale.reservations() == 60, 30, "the first 60 orders")

        # Hold the sale row: the consumer's next batch blocks inside its transaction.
        with engine.connect() as holder:
            holder.execute(select(FlashSale.id).where(FlashSale.id == sale.id).with_for_update())
            assert sale.buy(sale.users[60:]) == {"201:": 40, "409:SOLD_OUT": 20}
            wait_until(
                lambda: holder.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock'"
                    )
                ).scalar(),
                30,
                "the consumer blocked mid-batch",
            )
            consumer.send_signal(signal.SIGKILL)
            consumer.wait(10)
            holder.rollback()

        client = redis.Redis.from_url(server.url)
        key = lua.stream_key(sale.id)
        # The killed batch never committed: its winners wait on the stream, pending with "drill".
        assert sale.reservations() == 60
        assert client.xlen(key) == 40
        assert client.xpending(key, GROUP)["pending"] >= 1

        consumer = start_consumer(settings, "drill")  # the same name takes its pending back
        wait_until(lambda: sale.reservations() == CAP, 30, "every winner's order")
        wait_until(lambda: client.xlen(key) == 0, 30, "the stream drained")
        client.close()
        sale.check_books(server.url)
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(15)
        sale.close()


def test_a_redelivered_or_duplicated_entry_writes_no_second_order(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    own_redis: Callable[..., OwnRedis],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = own_redis()
    url = fresh_database()
    settings = stream_settings(url, server.url)
    engine = engines(url)
    sale = Sale(settings, engine, shoppers=5)
    client = redis.Redis.from_url(server.url)
    factory = make_session_factory(engine, settings)
    try:
        assert sale.buy(sale.users) == {"201:": 5}
        crashing = OrderStreamConsumer(client, factory, settings, name="c1")

        def died_before_ack(_batch: object) -> None:
            raise SystemExit("killed between commit and ack")

        monkeypatch.setattr(crashing, "_ack", died_before_ack)
        with pytest.raises(SystemExit):
            wait_until(lambda: crashing.poll(block_ms=50).written, 15, "a committed batch")
        assert sale.reservations() == 5  # committed, never acknowledged

        # A copy of one entry queued again (a client-side retry of XADD, a replayed backup).
        key = lua.stream_key(sale.id)
        first = client.xrange(key, count=1)[0][1]
        client.xadd(key, first)

        restarted = OrderStreamConsumer(client, factory, settings, name="c1")
        done = restarted.poll(block_ms=50)  # its own pending entries first
        assert (done.written, done.duplicates) == (0, 5)
        done = restarted.poll(block_ms=50)  # then the copy
        assert (done.written, done.duplicates) == (0, 1)
        assert client.xlen(key) == 0
        sale.check_books(server.url)
    finally:
        client.close()
        sale.close()


@pytest.mark.parametrize("writes", ["request", "stream"])
def test_redis_lost_mid_sale_is_reloaded_from_the_db_without_oversell(
    writes: str,
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    own_redis: Callable[..., OwnRedis],
) -> None:
    server = own_redis()
    url = fresh_database()
    settings = stream_settings(url, server.url, flash_order_writes=writes)
    engine = engines(url)
    sale = Sale(settings, engine, shoppers=CAP + 30)
    client = redis.Redis.from_url(server.url)
    factory = make_session_factory(engine, settings)
    consumer = OrderStreamConsumer(client, factory, settings, name="c1")

    def drain(expected: int) -> None:
        if writes == "stream":
            wait_until(
                lambda: consumer.poll(block_ms=50) and sale.reservations() == expected,
                30,
                f"{expected} orders written",
            )

    try:
        assert sale.buy(sale.users[:40]) == {"201:": 40}
        drain(40)
        assert sale.reservations() == 40

        server.kill()  # every counter, request id, stream and script is gone
        server.start()
        with session_scope(factory) as s:
            counters = FlashCounters(redis.Redis.from_url(server.url))
            drifts = reconcile.reconcile_all(
                s, counters, now=utcnow(), redis_now=counters.server_time(), grace_s=30
            )
            counters.close()
        assert [d.reloaded for d in drifts] == [True]  # reloaded from the DB

        # The first 40 try again with their keys: replays, not second units.
        assert sale.buy(sale.users[:40]) == {"201:": 40}
        seen = sale.buy(sale.users[40:])
        assert seen == {"201:": CAP - 40, "409:SOLD_OUT": 30}, seen
        drain(CAP)
        sale.check_books(server.url)
    finally:
        client.close()
        sale.close()


def test_with_aof_always_a_redis_restart_keeps_the_queued_orders(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    own_redis: Callable[..., OwnRedis],
) -> None:
    """The stream path's durability is Redis's: with `appendfsync always` a winner answered
    201 keeps its order through a kill -9 of Redis before any consumer ran."""
    server = own_redis(aof=True)
    url = fresh_database()
    settings = stream_settings(url, server.url)
    engine = engines(url)
    sale = Sale(settings, engine, shoppers=20)
    try:
        assert sale.buy(sale.users) == {"201:": 20}
        assert sale.reservations() == 0  # nothing written yet: no consumer
        server.kill()
        server.start()
        client = redis.Redis.from_url(server.url)
        consumer = OrderStreamConsumer(
            client, make_session_factory(engine, settings), settings, name="c1"
        )
        wait_until(
            lambda: consumer.poll(block_ms=50) and sale.reservations() == 20, 30, "20 orders"
        )
        client.close()
        sale.check_books(server.url)
    finally:
        sale.close()


def test_reconciliation_leaves_queued_winners_to_the_consumer(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    own_redis: Callable[..., OwnRedis],
) -> None:
    """A winner whose order still waits on the stream is no orphan, however old: giving its
    unit back would sell it twice once the consumer writes the order."""
    server = own_redis()
    url = fresh_database()
    settings = stream_settings(url, server.url)
    engine = engines(url)
    sale = Sale(settings, engine, shoppers=5)
    factory = make_session_factory(engine, settings)
    client = redis.Redis.from_url(server.url)
    try:
        assert sale.buy(sale.users) == {"201:": 5}
        counters = FlashCounters(client)
        with session_scope(factory) as s:
            drifts = reconcile.reconcile_all(
                s, counters, now=utcnow(), redis_now=counters.server_time() + 3600, grace_s=0
            )
        assert [(d.released_orphans, d.reloaded) for d in drifts] == [(0, False)]
        assert counters.snapshot(sale.id)[0] == CAP - 5
        consumer = OrderStreamConsumer(client, factory, settings, name="c1")
        wait_until(lambda: consumer.poll(block_ms=50) and sale.reservations() == 5, 30, "orders")
        sale.check_books(server.url)
    finally:
        client.close()
        sale.close()
