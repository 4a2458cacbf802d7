"""Benchmark: the merchant dashboard at a million orders, rollups against raw orders.

A throwaway PostgreSQL database (migrated to head) gets a year of business: 1,000,000 orders
across 200 merchants (Zipf-skewed: the largest has ~17 % of all orders), ~150,000 shoppers
(a loyal fifth places half the orders), 400 pickup stations, group-buy campaigns with their
groups (3–6 orders each; most succeed, some fail and are refunded), flash sales with their
reservations, and regular orders; evenings and weekends busier, 88 % paid, most picked up,
some refunded late. Rows go in with COPY. Then:

- the rollups are built from scratch (`rollup.rebuild`), and an incremental refresh is timed
  after 2,000 late refunds on orders of earlier days;
- for the largest merchant and a median one, each dashboard query (and the whole dashboard
  page's set of queries) runs against the rollups (`tuanbox.reports.queries`) and the same
  answer straight from the orders (`tuanbox.reports.naive`), checked equal, with p50/p99.

The raw side gets the console's (merchant_id, created_at, id) order-list index, so the
baseline is the best plain SQL can do. Times are printed, never asserted.

Run: ``.venv/bin/python bench/reports.py [--orders 1000000 --merchants 200 --runs 200]``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

import sqlalchemy as sa  # noqa: E402
from _wrk import machine, throwaway_database  # noqa: E402

from tuanbox.db.engine import make_engine, make_session_factory  # noqa: E402
from tuanbox.reports import naive, queries, rollup  # noqa: E402

TZ_NAME = "Asia/Shanghai"
TZ = ZoneInfo(TZ_NAME)
YEAR_START = datetime(2025, 12, 1, tzinfo=TZ)
DAYS = 365


class Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def _ts(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _row(out: TextIO, *values: object) -> None:
    out.write("\t".join("\\N" if v is None else str(v) for v in values) + "\n")


# Busier evenings, quiet nights (local hour weights).
HOURS = [1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 10, 11, 9, 8, 8, 9, 11, 14, 16, 17, 14, 8, 3]


def _moment(rng: random.Random, day: int) -> datetime:
    hour = rng.choices(range(24), HOURS)[0]
    base = YEAR_START + timedelta(days=day)
    return base + timedelta(hours=hour, seconds=rng.randrange(3600))


def _day(rng: random.Random) -> int:
    # A gentle upward trend over the year and busier weekends.
    while True:
        d = rng.randrange(DAYS)
        weight = (0.6 + 0.4 * d / DAYS) * (
            1.3 if (YEAR_START + timedelta(days=d)).weekday() >= 5 else 1.0
        )
        if rng.random() < weight / 1.3:
            return d


def generate(files: dict[str, TextIO], orders: int, merchants: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    new_id = Ids(rng)
    now = _ts(datetime(2026, 12, 1, tzinfo=UTC))
    n_users = max(100, orders * 15 // 100)
    users = [new_id() for _ in range(n_users)]
    loyal = users[: n_users // 5]
    for u in users:
        _row(files["users"], u, "shopper", "shopper", "t", now, now)
    stations = [new_id() for _ in range(400)]
    weights = [1 / (i + 1) for i in range(merchants)]
    scale = orders / sum(weights)
    made: dict[str, Any] = {"orders": 0, "groups": 0, "campaigns": 0, "flash": 0}
    sizes: list[tuple[str, int]] = []
    for i in range(merchants):
        m = new_id()
        n_orders = max(1, round(weights[i] * scale))
        if i == merchants - 1:
            n_orders = max(1, orders - made["orders"])
        sizes.append((m, n_orders))
        _row(files["merchants"], m, f"Farm {i}", f"LIC-{i}-{seed}", "t", now, now)
        p, sku = new_id(), new_id()
        _row(files["products"], p, m, f"Produce {i}", "", "M", "chilled", "t", now, now)
        _row(files["skus"], sku, p, "box", 1990, 10**9, 0, "t", now, now)
        mine = rng.sample(stations, min(len(stations), 5 + int(40 * weights[i] ** 0.3)))
        n_campaigns = max(3, n_orders // 600)
        campaigns: list[tuple[str, str, int, int]] = []  # id, kind, first day, days
        for _ in range(n_campaigns):
            cid, first, length = new_id(), rng.randrange(DAYS - 3), rng.randrange(3, 11)
            start, end = (
                YEAR_START + timedelta(days=first),
                YEAR_START + timedelta(days=first + length),
            )
            if rng.random() < 0.8:
                _row(files["campaigns"], cid, m, sku, f"Campaign {cid[:6]}", "fixed",
                     "[[3, 1590]]", 3, 6, 1, _ts(start), _ts(end), 86400, "[]", "f", "staff", now,
                     now)  # fmt: skip
                campaigns.append((cid, "group", first, length))
            else:
                _row(files["flash"], cid, m, sku, f"Flash {cid[:6]}", 990, 10**6, 10**6, 2,
                     _ts(start), _ts(end), "staff", now, now)  # fmt: skip
                campaigns.append((cid, "flash", first, length))
            made["campaigns"] += 1
        open_groups: dict[str, tuple[str, int, int, str, datetime]] = {}
        for _ in range(n_orders):
            user = rng.choice(loyal) if rng.random() < 0.5 else rng.choice(users)
            station = rng.choice(mine) if rng.random() < 0.95 else None
            roll = rng.random()
            group_id = None
            group_status = None
            if roll < 0.3:
                kind, created = "regular", _moment(rng, _day(rng))
            else:
                cid, kind, first, length = rng.choice(campaigns)
                created = _moment(rng, min(DAYS - 1, first + rng.randrange(length)))
                if kind == "group":
                    g = open_groups.get(cid)
                    if g is None or g[1] >= g[2]:
                        status = rng.choices(["confirmed", "failed", "open"], [75, 20, 5])[0]
                        g = (new_id(), 0, rng.randrange(3, 7), status, created)
                        deadline = _ts(created + timedelta(days=1))
                        _row(files["groups"], g[0], cid, status, user, 0, 0, 3, 6, 0, deadline,
                             _ts(created), _ts(created))  # fmt: skip
                        made["groups"] += 1
                    open_groups[cid] = (g[0], g[1] + 1, g[2], g[3], g[4])
                    group_id, group_status = g[0], g[3]
                    created = max(created, g[4])
            qty = rng.choices([1, 2, 3, 5], [70, 20, 7, 3])[0]
            price = {"regular": 1990, "group": 1590, "flash": 990}[kind]
            total = qty * price
            paid = rng.random() < 0.88
            paid_at = created + timedelta(minutes=rng.randrange(1, 30)) if paid else None
            paid_cents = total if paid else 0
            refunded, picked_at = 0, None
            status = "paid" if paid else "expired"
            if paid and group_status == "failed":
                refunded, status = total, "refunded"
            elif paid and rng.random() < 0.92:
                picked_at = created + timedelta(days=1, hours=rng.randrange(30))
                status = "completed"
                if rng.random() < 0.04:
                    refunded = rng.choice([total, max(1, total // 2)])
                    status = "refunded" if refunded == total else "completed"
            updated = max(x for x in (created, paid_at, picked_at) if x is not None)
            oid = new_id()
            paid_ts = _ts(paid_at) if paid_at else None
            picked_ts = _ts(picked_at) if picked_at else None
            _row(files["orders"], oid, user, m, sku, qty, price, total, paid_cents, refunded,
                 status, kind, group_id, station, "f", paid_ts, picked_ts, "f", _ts(created),
                 _ts(updated))  # fmt: skip
            if kind == "flash":
                _row(files["reservations"], new_id(), cid, user, uuid.uuid4().hex, qty, oid,
                     "active", _ts(created))  # fmt: skip
                made["flash"] += 1
            made["orders"] += 1
    made["users"] = n_users
    made["sizes"] = sorted(sizes, key=lambda s: -s[1])
    return made


COPIES = {
    "users": "users (id, role, display_name, active, created_at, updated_at)",
    "merchants": "merchants (id, name, licence_number, verified, created_at, updated_at)",
    "products": "products (id, merchant_id, name, description, size_class, zone, returnable,"
    " created_at, updated_at)",
    "skus": "skus (id, product_id, name, price_cents, stock_on_hand, stock_reserved, active,"
    " created_at, updated_at)",
    "campaigns": "gb_campaigns (id, merchant_id, sku_id, title, kind, tiers, min_size, max_size,"
    " per_user_limit, starts_at, ends_at, group_ttl_s, station_ids, presale, created_by,"
    " created_at, updated_at)",
    "flash": "flash_sales (id, merchant_id, sku_id, title, price_cents, stock_cap, remaining,"
    " per_user_limit, starts_at, ends_at, created_by, created_at, updated_at)",
    "groups": "gb_groups (id, campaign_id, status, leader_user_id, seats_taken, paid_count,"
    " min_size, max_size, join_seq, deadline_at, created_at, updated_at)",
    "orders": "orders (id, user_id, merchant_id, sku_id, qty, unit_price_cents, total_cents,"
    " paid_cents, refunded_cents, status, kind, group_id, station_id, stock_held, paid_at,"
    " picked_up_at, risk_hold, created_at, updated_at)",
    "reservations": "flash_reservations (id, sale_id, user_id, request_id, qty, order_id,"
    " status, created_at)",
}


def load(engine: sa.Engine, paths: dict[str, Path]) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for name, target in COPIES.items():
            with cur.copy(f"COPY {target} FROM STDIN") as copy, paths[name].open("rb") as f:
                while block := f.read(1 << 20):
                    copy.write(block)
        raw.commit()
    finally:
        raw.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    out: list[float] = []
    result = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200, help="runs per rollup query")
    parser.add_argument("--naive-runs", type=int, default=10, help="runs per raw-order query")
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    print(f"# bench/reports.py — {machine()}")
    with throwaway_database() as url, tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(url)
        paths = {name: Path(tmp) / f"{name}.tsv" for name in COPIES}
        t0 = time.perf_counter()
        files: dict[str, TextIO] = {name: p.open("w") for name, p in paths.items()}
        made = generate(files, args.orders, args.merchants, args.seed)
        for f in files.values():
            f.close()
        t1 = time.perf_counter()
        load(engine, paths)
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_orders_merchant_created ON orders"
                                 " (merchant_id, created_at, id)"))  # fmt: skip
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))
        t2 = time.perf_counter()
        print(f"generated {made['orders']:,} orders, {made['groups']:,} groups, "
              f"{made['campaigns']:,} campaigns, {made['flash']:,} flash orders, "
              f"{made['users']:,} shoppers in {t1 - t0:.1f} s; COPY + index + analyze "
              f"{t2 - t1:.1f} s")  # fmt: skip
        factory = make_session_factory(engine)
        first_day, last_day = YEAR_START.date(), YEAR_START.date() + timedelta(days=DAYS - 1)
        with factory() as s, s.begin():
            t0 = time.perf_counter()
            days = rollup.rebuild(
                s, TZ, first_day - timedelta(days=1), last_day + timedelta(days=3)
            )
            t1 = time.perf_counter()
        with factory() as s:
            rows = s.scalar(sa.text("SELECT count(*) FROM report_daily"))
            rows += s.scalar(sa.text("SELECT count(*) FROM report_daily_stations")) or 0
        print(f"rollups rebuilt: {days} days, {rows:,} rows in {t1 - t0:.1f} s")
        _views(engine, args.seed)
        # Late refunds on 2,000 earlier orders, then the incremental refresh.
        with engine.begin() as conn:
            conn.execute(sa.text(
                "UPDATE orders SET refunded_cents = paid_cents, status = 'refunded',"
                " updated_at = now() WHERE id IN (SELECT id FROM orders WHERE paid_cents > 0"
                " AND refunded_cents = 0 ORDER BY md5(id) LIMIT 2000)"))  # fmt: skip
        with factory() as s, s.begin():
            t0 = time.perf_counter()
            result = rollup.refresh(s, TZ, overlap_s=300)
            t1 = time.perf_counter()
        took = t1 - t0
        print(
            f"incremental refresh after 2,000 late refunds: {result.orders_read:,} orders "
            f"read, {result.days_recomputed:,} merchant-days recomputed in {took:.2f} s"
        )
        sizes = made["sizes"]
        for label, (merchant, n) in (("largest", sizes[0]), ("median", sizes[len(sizes) // 2])):
            _measure(factory, label, merchant, n, last_day, args)
        engine.dispose()


def _views(engine: sa.Engine, seed: int) -> None:
    """Page views per campaign and day (as flushed from Redis): ~8 per order placed."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO report_campaign_views (merchant_id, day, campaign_id, views)"
            " SELECT merchant_id, day, campaign_id, sum(orders) * 8"
            " + abs(hashtext(campaign_id || day::text)) % 20 FROM report_daily"
            " WHERE campaign_id <> '' GROUP BY merchant_id, day, campaign_id"))  # fmt: skip


def _compare(fn: Callable[..., Any], pair: tuple[str, ...], kw: dict[str, Any], s: Any) -> Any:
    return [fn(s, campaign_id=c, **kw) for c in pair]


def _measure(
    factory: Any, label: str, merchant: str, n: int, last_day: date, args: argparse.Namespace
) -> None:
    month = (last_day - timedelta(days=29), last_day)
    year = (last_day - timedelta(days=DAYS - 1), last_day)
    with factory() as s:
        busiest = sa.text(
            "SELECT campaign_id FROM report_daily WHERE merchant_id = :m AND campaign_id <> ''"
            " GROUP BY 1 ORDER BY sum(orders) DESC LIMIT 2"
        )
        top = s.execute(busiest, {"m": merchant}).scalars().all()
    pair = tuple(top)
    views: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = []
    for span, (a, b) in (("30 d", month), ("365 d", year)):
        fast_kw: dict[str, Any] = {"merchant_id": merchant, "first": a, "last": b}
        slow_kw: dict[str, Any] = {**fast_kw, "tz": TZ_NAME}
        for name, q_fast, q_slow in (
            ("totals", queries.totals, naive.totals),
            ("by day", queries.by_day, naive.by_day),
            ("by campaign", queries.by_campaign, naive.by_campaign),
            ("by station", queries.by_station, naive.by_station),
            ("buyers", queries.buyers_by_station, naive.buyers_by_station),
        ):
            views.append((f"{name} {span}", partial(q_fast, **fast_kw), partial(q_slow, **slow_kw)))
        views.append((f"compare 2 {span}", partial(_compare, queries.campaign_days, pair, fast_kw),
                      partial(_compare, naive.campaign_days, pair, slow_kw)))  # fmt: skip
        views.append((f"WHOLE PAGE {span}", partial(queries.dashboard, compare=pair, **fast_kw),
                      partial(naive.dashboard, compare=pair, **slow_kw)))  # fmt: skip
    print(f"\n## {label} merchant: {n:,} orders in the year; rollups {args.runs} runs, raw "
          f"orders {args.naive_runs} runs per query (ms)")  # fmt: skip
    print(f"{'query':<22} {'rollup p50':>11} {'p99':>8} {'raw p50':>9} {'p99':>8} {'p50 ×':>7}")
    worst = 0.0
    for name, fast, slow in views:
        with factory() as s:
            fast(s)  # warm the plan and the cache alike for both
            f_ms, f_res = timed(partial(fast, s), args.runs)
            slow(s)
            s_ms, s_res = timed(partial(slow, s), args.naive_runs)
        same = "" if f_res == s_res else "  ANSWERS DIFFER"
        worst = max(worst, pct(f_ms, 0.99))
        print(f"{name:<22} {statistics.median(f_ms):>11.2f} {pct(f_ms, 0.99):>8.2f} "
              f"{statistics.median(s_ms):>9.1f} {pct(s_ms, 0.99):>8.1f} "
              f"{statistics.median(s_ms) / statistics.median(f_ms):>7.0f}{same}")  # fmt: skip
    print(f"worst rollup p99: {worst:.1f} ms (goal: every view < 200 ms)")


if __name__ == "__main__":
    main()
