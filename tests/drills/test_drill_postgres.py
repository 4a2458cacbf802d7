"""Drill: PostgreSQL restarted mid-checkout; clients retry with their Idempotency-Keys and
every order is created once, charged once and paid once, with stock consistent."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.drills.support import Drill, OwnPostgres
from tests.platform.factories import auth_header, make_merchant, make_product, make_sku, make_user
from tests.platform.fulfilment.fx import make_station
from tests.support import free_port, wait_until
from tuanbox.api.app import create_app
from tuanbox.catalog.models import Sku
from tuanbox.db.engine import make_engine, make_session_factory, session_scope
from tuanbox.db.migrate import upgrade
from tuanbox.orders.models import Order
from tuanbox.payments.models import Payment, PaymentIntent, SimPayRecord
from tuanbox.settings import Settings

SHOPPERS = 10
ORDERS_EACH = 3
STOCK = 100
PAID = ("paid", "confirmed")


@pytest.fixture
def postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Api:
    base: str
    settings: Settings


@pytest.fixture
def api(postgres: OwnPostgres) -> Iterator[Api]:
    """The real app under uvicorn, on its own cluster's database."""
    admin = make_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE tuanbox"))
    admin.dispose()
    url = postgres.url.rsplit("/", 1)[0] + "/tuanbox"
    upgrade(url)
    settings = make_settings(
        database_url=url,
        rate_limit_prefix=f"drill:{uuid.uuid4().hex}:",
        payment_providers="sim",
        # A claim left behind by a request the crash cut off is taken over after this long
        # (60 s by default); until then a retry hears 409 IDEMPOTENCY_IN_PROGRESS and waits.
        idempotency_stale_s=3,
        # Every shopper here is 127.0.0.1, and each retries through the outage: the per-IP
        # window of a carrier NAT is not what this drill is about.
        orders_create_per_ip_per_min=100_000,
        orders_create_per_user_per_min=10_000,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, "the API up")
    try:
        yield Api(f"http://127.0.0.1:{port}", settings)
    finally:
        server.should_exit = True
        thread.join(15)


class Shopper:
    """A shop client that retries every step with the same Idempotency-Key until it gets an
    answer that is not a 5xx or a dropped connection, as the shop's pages do."""

    def __init__(self, api: Api, headers: dict[str, str], stats: Counter[str]) -> None:
        self.http = httpx.Client(base_url=api.base, headers=headers, timeout=10)
        self.stats = stats

    def _retry(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        def attempt() -> httpx.Response | None:
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError:
                self.stats["dropped connection, retried"] += 1
                return None
            if response.status_code >= 500:
                self.stats[f"{response.status_code}, retried"] += 1
                return None
            if response.status_code == 409 and "IDEMPOTENCY_IN_PROGRESS" in response.text:
                self.stats["409 in progress (a claim the crash left), retried"] += 1
                return None
            return response

        return wait_until(attempt, 60, f"{method} {path} answered")

    def buy(self, sku_id: str, station_id: str) -> str:
        key = f"drill-{uuid.uuid4().hex}"
        r = self._retry(
            "POST",
            "/api/v1/orders",
            json={"sku_id": sku_id, "qty": 1, "station_id": station_id},
            headers={"Idempotency-Key": key + "-order"},
        )
        assert r.status_code == 201, r.text
        order_id = str(r.json()["id"])
        r = self._retry(
            "POST",
            f"/api/v1/orders/{order_id}/payments",
            json={"provider": "sim"},
            headers={"Idempotency-Key": key + "-pay"},
        )
        assert r.status_code == 201, r.text
        intent = r.json()["id"]
        # The gateway's page: the shopper presses "pay" until it says it went through.
        r = self._retry("POST", f"/pay/sim/{intent}/confirm", data={})
        assert r.status_code < 400, r.text
        return order_id


@pytest.mark.slow
def test_postgres_restarted_mid_checkout(postgres: OwnPostgres, api: Api, drill: Drill) -> None:
    drill.title = "PostgreSQL restarted mid-checkout"
    engine = make_engine(api.settings.database_url)
    try:
        factory = make_session_factory(engine, api.settings)
        with session_scope(factory) as s:
            sku_id = make_sku(s, make_product(s, make_merchant(s)), stock=STOCK).id
            station_id = make_station(s).id
            headers = [auth_header(api.settings, make_user(s)) for _ in range(SHOPPERS)]
        stats: Counter[str] = Counter()
        done: list[str] = []
        lock = threading.Lock()
        restart_now = threading.Event()

        def shop(h: dict[str, str]) -> None:
            shopper = Shopper(api, h, stats)
            try:
                for _ in range(ORDERS_EACH):
                    order_id = shopper.buy(sku_id, station_id)
                    with lock:
                        done.append(order_id)
                        if len(done) >= SHOPPERS * ORDERS_EACH // 3:
                            restart_now.set()
            finally:
                shopper.http.close()

        def restart() -> None:
            restart_now.wait(120)
            postgres.stop("immediate")  # a crash: sessions cut mid-transaction, WAL recovery next
            drill.fault(
                f"PostgreSQL crashed (pg_ctl stop -m immediate) and restarted with "
                f"{len(done)}/{SHOPPERS * ORDERS_EACH} checkouts complete, the rest in flight"
            )
            postgres.start()

        breaker = threading.Thread(target=restart)
        breaker.start()
        with ThreadPoolExecutor(SHOPPERS) as pool:
            list(pool.map(shop, headers))
        breaker.join()

        with session_scope(factory) as s:
            orders = s.scalars(select(Order).where(Order.sku_id == sku_id)).all()
            per_order_payments = Counter(s.scalars(select(Payment.order_id)))
            intents = Counter(s.scalars(select(PaymentIntent.order_id)))
            charges = Counter(
                s.scalars(
                    select(PaymentIntent.order_id)
                    .join(SimPayRecord, SimPayRecord.intent_id == PaymentIntent.id)
                    .where(SimPayRecord.kind == "charge")
                )
            )
            sku = s.get(Sku, sku_id)
            assert sku is not None
            held = s.scalar(
                select(func.coalesce(func.sum(Order.qty), 0)).where(
                    Order.sku_id == sku_id, Order.stock_held.is_(True)
                )
            )
            statuses = Counter(o.status for o in orders)
            underpaid = [o.id for o in orders if o.paid_cents != o.total_cents]
            reserved, on_hand = sku.stock_reserved, sku.stock_on_hand
    finally:
        # Also when a step fails: its pooled connections must not outlive the test.
        engine.dispose()
    expected = SHOPPERS * ORDERS_EACH
    drill.note(f"client retries through the restart: {dict(stats)}")
    drill.check("checkouts the shoppers completed", expected, len(done))
    drill.check("orders in the DB (one per order Idempotency-Key)", expected, len(orders))
    drill.check(
        "orders the shoppers got back = orders in the DB", set(done), {o.id for o in orders}
    )
    drill.check("orders paid", expected, sum(statuses[s] for s in PAID))
    drill.check("payment intents per order", {1}, set(intents.values()))
    drill.check("gateway charges per order (no double charge)", {1}, set(charges.values()))
    drill.check("payments applied per order", {1}, set(per_order_payments.values()))
    drill.check("orders whose paid amount is not their total", [], underpaid)
    drill.check("SKU stock reserved = units held by orders", int(held or 0), reserved)
    drill.check("SKU stock on hand untouched until pickup", STOCK, on_hand)
    drill.done()
