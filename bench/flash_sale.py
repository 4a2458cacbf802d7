"""Benchmark: N concurrent buyers against one flash-sale SKU through the running API.

Creates a PostgreSQL database for the run, migrates it, seeds a merchant, a SKU and N
shoppers, starts uvicorn as a subprocess with production settings (TUANBOX_ENV=production
and freshly generated secrets), creates the sale through the API and lets N buyers with
`--concurrency` connections in flight reserve one unit each. Prints reservations/s, p50/p99
latency and the oversell count, then, in the same run, the raw rate of the same Lua script
called directly from Python (the baseline), and the ratio.

Run: ``.venv/bin/python bench/flash_sale.py [--buyers 2000 --units 500 --concurrency 128]``.
The per-IP limit is raised for the run (every buyer comes from 127.0.0.1); the per-user
limit stays at its production default.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import redis
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

from tuanbox.accounts.deps import Principal  # noqa: E402
from tuanbox.accounts.models import User  # noqa: E402
from tuanbox.accounts.tokens import issue_access_token  # noqa: E402
from tuanbox.catalog.models import Merchant, Product, Sku  # noqa: E402
from tuanbox.db.engine import make_engine, make_session_factory, session_scope  # noqa: E402
from tuanbox.db.migrate import upgrade  # noqa: E402
from tuanbox.flashsale.counters import FlashCounters  # noqa: E402
from tuanbox.flashsale.lua import ReserveStatus  # noqa: E402
from tuanbox.flashsale.models import FlashSale, Reservation  # noqa: E402
from tuanbox.orders.models import Order  # noqa: E402
from tuanbox.settings import Settings  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def production_env(database_url: str, port: int) -> dict[str, str]:
    key = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return {
        "TUANBOX_ENV": "production",
        "TUANBOX_LOG_FORMAT": "json",
        "TUANBOX_LOG_LEVEL": "WARNING",
        "TUANBOX_DATABASE_URL": database_url,
        "TUANBOX_REDIS_URL": REDIS_URL,
        "TUANBOX_SECRET_KEY": secrets.token_urlsafe(48),
        "TUANBOX_PII_KEY": secrets.token_urlsafe(48),
        "TUANBOX_PAYMENT_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "TUANBOX_PICKUP_SIGNING_KEY": base64.b64encode(key).decode(),
        "TUANBOX_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TUANBOX_RATE_LIMIT_PREFIX": f"bench{uuid.uuid4().hex[:6]}:rl:",
        "TUANBOX_FLASH_PER_IP_PER_10S": str(10**7),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def create_database() -> tuple[str, str]:
    name = f"tuanbox_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    return name, url


def drop_database(name: str) -> None:
    admin = sa.create_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def seed(url: str, buyers: int, units: int) -> tuple[str, str, str, list[str]]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        merchant = Merchant(name="Bench Farm", licence_number=f"B-{uuid.uuid4().hex[:8]}")
        s.add(merchant)
        s.flush()
        product = Product(merchant_id=merchant.id, name="Durian")
        s.add(product)
        s.flush()
        sku = Sku(product_id=product.id, name="1 box", price_cents=2000, stock_on_hand=units + 1000)
        staff = User(role="merchant_staff", merchant_id=merchant.id)
        users = [User(role="shopper") for _ in range(buyers)]
        s.add_all([sku, staff, *users])
        s.flush()
        ids = (merchant.id, sku.id, staff.id, [u.id for u in users])
    engine.dispose()
    return ids


def start_api(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "tuanbox.api.app:app_from_env",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
            "--backlog",
            "4096",
            "--timeout-keep-alive",
            "60",
        ],
        env={**os.environ, **env, "PYTHONPATH": f"{REPO}:{REPO / 'platform'}"},
        cwd=REPO,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("uvicorn did not start")
        time.sleep(0.1)  # polling readiness with a deadline


async def buy_all(
    base: str, sale_id: str, tokens: list[str], concurrency: int
) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one(i: int, token: str) -> None:
            async with gate:
                started = time.perf_counter()
                r = await client.post(
                    f"/api/v1/flash-sales/{sale_id}/reservations",
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Idempotency-Key": f"bench-{i:07d}",
                    },
                    json={"qty": 1},
                )
                latencies.append(time.perf_counter() - started)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one(i, t) for i, t in enumerate(tokens)))
        elapsed = time.perf_counter() - started
    return latencies, statuses, elapsed


async def healthz_rate(base: str, n: int, concurrency: int) -> float:
    """The same client and server on the cheapest route: the HTTP ceiling of this box."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def one() -> None:
            async with gate:
                (await client.get("/healthz")).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return n / (time.perf_counter() - started)


def raw_lua_rate(calls: int) -> float:
    """The same RESERVE script, called directly from Python on a throwaway sale."""
    counters = FlashCounters(redis.Redis.from_url(REDIS_URL), prefix=f"bench{uuid.uuid4().hex[:6]}")
    sale = "raw"
    counters.load(sale, remaining=calls, users={}, requests={})
    started = time.perf_counter()
    for i in range(calls):
        result = counters.reserve(
            sale, user_id=f"u{i}", request_id=f"r{i}", qty=1, per_user_limit=1
        )
        assert result.status is ReserveStatus.RESERVED
    elapsed = time.perf_counter() - started
    counters.forget(sale)
    counters.close()
    return calls / elapsed


def service_costs(url: str, merchant_id: str, sku_id: str, staff_id: str, users: list[str]) -> str:
    """Per-call cost of `reserve()` without HTTP, one caller: winners vs turned-away buyers."""
    from tuanbox.db.base import utcnow
    from tuanbox.errors import ConflictError
    from tuanbox.flashsale import services

    engine = make_engine(url)
    factory = make_session_factory(engine)
    counters = FlashCounters(redis.Redis.from_url(REDIS_URL))
    winners = min(200, len(users) // 2)
    with session_scope(factory) as s:
        now = utcnow()
        sale = services.create_sale(
            s,
            merchant_id=merchant_id,
            actor_id=staff_id,
            spec=services.SaleSpec(
                sku_id, "svc", 990, winners, 1, now - timedelta(minutes=1), now + timedelta(hours=1)
            ),
        )
        sale_id = sale.id
    cache = services.TermsCache()
    timings: dict[bool, list[float]] = {True: [], False: []}
    for i, user in enumerate(users[: winners * 2]):
        with factory() as s:
            started = time.perf_counter()
            try:
                services.reserve(
                    s,
                    counters,
                    sale_id=sale_id,
                    user_id=user,
                    request_id=f"svc-{i}",
                    qty=1,
                    now=utcnow(),
                    terms_cache=cache,
                )
                won = True
            except ConflictError:
                won = False
            timings[won].append((time.perf_counter() - started) * 1000)
    counters.forget(sale_id)
    counters.close()
    engine.dispose()
    return (
        f"service level, 1 caller, no HTTP: winner (Lua + DB transaction) "
        f"p50 {statistics.median(timings[True]):.2f} ms; sold out (Lua only) "
        f"p50 {statistics.median(timings[False]):.2f} ms"
    )


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=2000)
    parser.add_argument("--units", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--lua-calls", type=int, default=20000)
    args = parser.parse_args()

    name, url = create_database()
    port = free_port()
    env = production_env(url, port)
    api = None
    try:
        merchant_id, sku_id, staff_id, users = seed(url, args.buyers, args.units)
        # The same secrets the server runs with, so our tokens verify there.
        values: dict[str, Any] = {k.removeprefix("TUANBOX_").lower(): v for k, v in env.items()}
        settings = Settings(_env_file=None, **values)
        api = start_api(env, port, args.workers)
        base = f"http://127.0.0.1:{port}"
        staff = issue_access_token(settings, Principal(staff_id, "merchant_staff", merchant_id))
        now = datetime.now(UTC)
        r = httpx.post(
            f"{base}/api/v1/flash-sales",
            headers={"Authorization": f"Bearer {staff}"},
            json={
                "sku_id": sku_id,
                "title": "bench",
                "price_cents": 990,
                "stock_cap": args.units,
                "per_user_limit": 1,
                "starts_at": (now - timedelta(minutes=1)).isoformat(),
                "ends_at": (now + timedelta(hours=1)).isoformat(),
            },
            timeout=30,
        )
        r.raise_for_status()
        sale_id = r.json()["id"]
        tokens = [issue_access_token(settings, Principal(u, "shopper")) for u in users]
        latencies, statuses, elapsed = asyncio.run(buy_all(base, sale_id, tokens, args.concurrency))
        ceiling = asyncio.run(healthz_rate(base, args.buyers, args.concurrency))

        engine = make_engine(url)
        with session_scope(make_session_factory(engine)) as s:
            orders = s.scalar(sa.select(sa.func.count()).select_from(Order)) or 0
            active = (
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(Reservation)
                    .where(Reservation.status == "active")
                )
                or 0
            )
            sale = s.get(FlashSale, sale_id)
            remaining = sale.remaining if sale else -1
        engine.dispose()
        counters = FlashCounters(redis.Redis.from_url(REDIS_URL))
        redis_stock, _, _ = counters.snapshot(sale_id)
        counters.forget(sale_id)
        counters.close()

        # The SKU holds units + 1000: the API sale takes `units`, this one up to 200.
        svc = service_costs(url, merchant_id, sku_id, staff_id, users)
        lua_rate = raw_lua_rate(args.lua_calls)
        api_rate = len(latencies) / elapsed
        print(
            f"machine: {platform.machine()} {os.cpu_count()} CPU, "
            f"Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"uvicorn workers={args.workers}"
        )
        print(
            f"load average (1/5/15 min) at the end: {os.getloadavg()} "
            "(other work on the box skews figures)"
        )
        print(f"buyers={args.buyers} units={args.units} concurrency={args.concurrency}")
        print(f"statuses: {dict(sorted(statuses.items()))}")
        print(
            f"API: {api_rate:,.0f} reservation requests/s answered "
            f"({statuses.get(201, 0) / elapsed:,.0f} successful reservations/s) in {elapsed:.2f} s"
        )
        print(f"HTTP ceiling, same client and server, GET /healthz: {ceiling:,.0f} requests/s")
        print(f"latency: p50 {pct(latencies, 50):.1f} ms, p99 {pct(latencies, 99):.1f} ms")
        print(
            f"oversell: {max(0, orders - args.units)} (orders {orders}, "
            f"active reservations {active}, DB remaining {remaining}, Redis stock {redis_stock})"
        )
        print(f"raw Lua RESERVE from Python (1 connection): {lua_rate:,.0f} calls/s")
        print(svc)
        print(
            f"ratio API/raw Lua: {api_rate / lua_rate:.3f} "
            f"({lua_rate / api_rate:.1f}x slower end to end)"
        )
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=20)
        drop_database(name)


if __name__ == "__main__":
    main()
