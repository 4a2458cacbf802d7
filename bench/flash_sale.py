"""Benchmark: a flash sale through HTTP, driven by wrk, against `GET /healthz` in the same run.

For each way of writing winners' orders (`--writes request,stream`: inside the request, or by
the `tuanbox flash-orders` stream consumer) a production-mode `tuanbox api --workers 2` is
started on a throwaway PostgreSQL database (secrets generated for the run; see bench/_wrk.py
for the production settings it satisfies). Then, with the same wrk settings (2 threads, 64
connections, 15 s):

1. `GET /healthz` (the HTTP ceiling of this box at that moment),
2. reservations: 2,000 shoppers' tokens rotating, a fresh Idempotency-Key per request, for a
   sale of 100 units (per-shopper limit 1; the per-user window stays at its production
   default, the per-IP one is raised since every request comes from 127.0.0.1),
3. `GET /healthz` again; the ratio uses the mean of the two,
4. the sold-out sale once more, so that a worker's memory under the same load can be seen to
   level off (RSS at start, after each run, and the peak are printed).

It prints both rates, the ratio, p50/p99 (wrk's latency histogram), the answers by status and
problem code, the API workers' memory (VmRSS before/after, VmHWM peak), and the database
check: oversold 0, DB remaining + active reservations = cap, every winner (201) has exactly
one reservation and one order, Redis stock = DB remaining.

Run: ``.venv/bin/python bench/flash_sale.py [--writes request,stream] [--duration 15]
[--durable-redis]``; the last runs against a redis-server of the bench's own with
`appendfsync always`, the Redis durability the stream path needs to keep its 201s. It is
implied whenever `stream` is among the modes (all modes then share that Redis): in production
`tuanbox api` refuses stream writes on a Redis without it (tuanbox.api.redis_durability).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

import httpx  # noqa: E402
import redis  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from _wrk import (  # noqa: E402
    REDIS_URL,
    CpuClock,
    WrkResult,
    api_server,
    durable_redis,
    free_port,
    machine,
    memory_kib,
    production_env,
    run_wrk,
    settings_from,
    start,
    throwaway_database,
)

from tuanbox.accounts.deps import Principal  # noqa: E402
from tuanbox.accounts.models import User  # noqa: E402
from tuanbox.accounts.tokens import issue_access_token  # noqa: E402
from tuanbox.catalog.models import Merchant, Product, Sku  # noqa: E402
from tuanbox.db.engine import make_engine, make_session_factory, session_scope  # noqa: E402
from tuanbox.flashsale.counters import FlashCounters  # noqa: E402
from tuanbox.flashsale.models import FlashSale, Reservation  # noqa: E402
from tuanbox.orders.models import Order  # noqa: E402


def seed(url: str, shoppers: int, stock: int) -> tuple[str, str, str, list[str]]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        merchant = Merchant(name="Bench Farm", licence_number=f"B-{uuid.uuid4().hex[:8]}")
        s.add(merchant)
        s.flush()
        product = Product(merchant_id=merchant.id, name="Durian")
        s.add(product)
        s.flush()
        sku = Sku(product_id=product.id, name="1 box", price_cents=2000, stock_on_hand=stock)
        staff = User(role="merchant_staff", merchant_id=merchant.id)
        users = [User(role="shopper") for _ in range(shoppers)]
        s.add_all([sku, staff, *users])
        s.flush()
        ids = (merchant.id, sku.id, staff.id, [u.id for u in users])
    engine.dispose()
    return ids


def create_sale(base: str, staff_token: str, sku_id: str, units: int) -> str:
    now = datetime.now(UTC)
    r = httpx.post(
        f"{base}/api/v1/flash-sales",
        headers={"Authorization": f"Bearer {staff_token}"},
        json={
            "sku_id": sku_id,
            "title": "bench",
            "price_cents": 990,
            "stock_cap": units,
            "per_user_limit": 1,
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat(),
        },
        timeout=30,
    )
    r.raise_for_status()
    return str(r.json()["id"])


def check_database(
    url: str, redis_url: str, sale_id: str, units: int, winners: int
) -> dict[str, Any]:
    """The record after the run: what was sold, to whom, and whether Redis agrees."""
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        sale = s.get(FlashSale, sale_id)
        assert sale is not None
        active = s.execute(
            sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(Reservation.qty), 0)).where(
                Reservation.sale_id == sale_id, Reservation.status == "active"
            )
        ).one()
        orders = s.scalar(
            sa.select(sa.func.count())
            .select_from(Order)
            .join(Reservation, Reservation.order_id == Order.id)
            .where(Reservation.sale_id == sale_id)
        )
        users_twice = s.scalar(
            sa.select(sa.func.count()).select_from(
                sa.select(Reservation.user_id)
                .where(Reservation.sale_id == sale_id)
                .group_by(Reservation.user_id)
                .having(sa.func.count() > 1)
                .subquery()
            )
        )
        remaining = sale.remaining
    engine.dispose()
    counters = FlashCounters(redis.Redis.from_url(redis_url))
    redis_stock, _, _ = counters.snapshot(sale_id)
    counters.forget(sale_id)
    counters.close()
    sold = int(active[1])
    return {
        "oversold": max(0, sold - units),
        "sold": sold,
        "db_remaining": remaining,
        "books_balance": remaining + sold == units,
        "reservations": int(active[0]),
        "orders": int(orders or 0),
        "winners_201": winners,
        "every_winner_one_order": int(active[0]) == winners == int(orders or 0) and not users_twice,
        "redis_stock": redis_stock,
    }


def wait_for_orders(url: str, sale_id: str, winners: int, timeout_s: float = 60) -> float:
    """Stream mode: seconds until the consumer has written every winner's order."""
    engine = make_engine(url)
    started = time.monotonic()
    try:
        while True:
            with engine.connect() as conn:
                n = conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(Reservation)
                    .where(Reservation.sale_id == sale_id)
                )
            if (n or 0) >= winners or time.monotonic() - started > timeout_s:
                return time.monotonic() - started
            time.sleep(0.05)  # polling the consumer's progress with a deadline
    finally:
        engine.dispose()


def run_mode(
    url: str, seeded: tuple[str, str, str, list[str]], writes: str, args: argparse.Namespace
) -> None:
    merchant_id, sku_id, staff_id, users = seeded
    port = free_port()
    env = production_env(
        url,
        port,
        TUANBOX_FLASH_PER_IP_PER_10S=str(10**7),
        TUANBOX_FLASH_ORDER_WRITES=writes,
        TUANBOX_REDIS_URL=args.redis_url,
    )
    settings = settings_from(env)
    staff = issue_access_token(settings, Principal(staff_id, "merchant_staff", merchant_id))
    tokens = [issue_access_token(settings, Principal(u, "shopper")) for u in users]
    consumer = start(["flash-orders"], env) if writes == "stream" else None
    try:
        with (
            api_server(env, args.workers) as (base, api),
            tempfile.NamedTemporaryFile("w", suffix=".tokens") as token_file,
        ):
            token_file.write("\n".join(tokens) + "\n")
            token_file.flush()
            sale_id = create_sale(base, staff, sku_id, args.units)
            wrk = {"threads": args.threads, "connections": args.connections}
            pids = api.workers()
            cpu: dict[str, tuple[float, float, float]] = {}

            def timed(name: str, script: str, env: dict[str, str] | None = None) -> WrkResult:
                start = CpuClock.now(pids, args.redis_url)
                result = run_wrk(base, script, duration_s=args.duration, env=env, **wrk)
                cpu[name] = start.per_answer_us(
                    CpuClock.now(pids, args.redis_url), result.responses
                )
                return result

            def sale_env() -> dict[str, str]:
                return {
                    "BENCH_TOKENS": token_file.name,
                    "BENCH_PATH": f"/api/v1/flash-sales/{sale_id}/reservations",
                    "BENCH_RUN": uuid.uuid4().hex[:8],
                }

            before = memory_kib(pids)
            health1 = timed("healthz (before)", "healthz.lua")
            series = [before, memory_kib(pids)]
            reserve = timed("reservations", "flash_sale.lua", sale_env())
            series.append(memory_kib(pids))
            health2 = timed("healthz (after)", "healthz.lua")
            # The sale is sold out now: one more run of turned-away buyers shows whether a
            # worker's memory keeps growing under the same load (it should not).
            again = timed("sold out, once more", "flash_sale.lua", sale_env())
            series.append(memory_kib(pids))
            winners = reserve.counts.get("201", 0)
            drained = wait_for_orders(url, sale_id, winners) if consumer is not None else 0.0
    finally:
        if consumer is not None:
            consumer.stop()
    report(writes, health1, reserve, health2, series, drained, args)
    print(f"  sold out, once more:   {again.describe()}")
    # CPU per answer is what the shared box disturbs least: other processes change how fast
    # wrk's answers come, much less what each answer costs.
    print("  CPU per answer, µs (API workers / Redis server / wrk):")
    for name, (workers, server, client) in cpu.items():
        print(f"    {name:<22} {workers:7.1f} / {server:5.1f} / {client:5.1f}")
    healthz_us = (cpu["healthz (before)"][0] + cpu["healthz (after)"][0]) / 2
    print(
        f"  API worker CPU, healthz / reservation: {healthz_us / cpu['reservations'][0]:.2f} "
        f"(sold-out run: {healthz_us / cpu['sold out, once more'][0]:.2f})"
    )
    print(f"  database: {check_database(url, args.redis_url, sale_id, args.units, winners)}")


def report(
    writes: str,
    health1: WrkResult,
    reserve: WrkResult,
    health2: WrkResult,
    series: list[dict[int, tuple[int, int]]],
    drained: float,
    args: argparse.Namespace,
) -> None:
    healthz = (health1.rate + health2.rate) / 2
    print(f"== orders written: {writes}")
    print(f"  GET /healthz (before): {health1.describe()}")
    print(f"  reservations:          {reserve.describe()}")
    print(f"  GET /healthz (after):  {health2.describe()}")
    print(
        f"  ratio reservations / healthz: {reserve.rate / healthz:.2f} "
        f"({reserve.rate:,.0f} / {healthz:,.0f} req/s); "
        f"reservations p50 {reserve.p50_ms:.1f} ms, p99 {reserve.p99_ms:.1f} ms"
    )
    if writes == "stream":
        print(f"  consumer drained the winners' orders {drained:.2f} s after the load ended")
    for pid in sorted(series[0]):
        rss = " -> ".join(f"{snap.get(pid, (0, 0))[0] / 1024:.1f}" for snap in series)
        peak = series[-1].get(pid, (0, 0))[1]
        print(
            f"  API worker {pid}: RSS MiB at start -> after healthz -> after reservations -> "
            f"after a second {args.duration} s of sold-out reservations: {rss} "
            f"(peak {peak / 1024:.1f} MiB)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=2000)
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="tuanbox api --workers")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument(
        "--writes", default="request,stream", help="request, stream or both (comma-separated)"
    )
    parser.add_argument(
        "--durable-redis",
        action="store_true",
        help="run against a redis-server of the bench's own with appendfsync always",
    )
    args = parser.parse_args()
    if "stream" in args.writes and not args.durable_redis:
        print("stream writes: the API refuses a Redis without appendfsync always in production")
        args.durable_redis = True
    if args.durable_redis:
        with durable_redis() as args.redis_url:
            print(f"Redis: the bench's own, appendonly yes, appendfsync always ({args.redis_url})")
            run_all(args)
    else:
        args.redis_url = REDIS_URL
        run_all(args)


def run_all(args: argparse.Namespace) -> None:
    modes = [m.strip() for m in args.writes.split(",") if m.strip()]
    print(machine())
    print(
        f"shoppers={args.shoppers} units={args.units} api workers={args.workers}; wrk "
        f"-t{args.threads} -c{args.connections} -d{args.duration}s"
    )
    with throwaway_database() as url:
        seeded = seed(url, args.shoppers, stock=args.units * len(modes) + 10)
        for writes in modes:
            run_mode(url, seeded, writes, args)
    print(f"load at the end: {machine().split('uptime:', 1)[1]}")


if __name__ == "__main__":
    main()
