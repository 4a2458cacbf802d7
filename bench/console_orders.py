"""Benchmark: the console's order list at a million orders, with and without its indexes.

A throwaway PostgreSQL database (migrated to head) gets 1,000,000 orders over a year across
200 merchants (cubic skew: the largest has ~13 % of them), in every status the tabs map.
For the largest merchant and a median one, each console query runs `--runs` times:

- the first page of all orders, of the 待发货 (to ship) tab and of the 售后 (after-sales) tab;
- a deep page (the keyset cursor after 5,000 orders);
- the tab counts (counters plus pending deltas, and counted from the orders as before);
  one day's orders; a search by an order id's first 8 characters;
- the CSV export of one month (rows per second).

Then the tab counts read with 1,000 single-order moves per merchant not yet compacted
(migration 0036's deltas), one compaction, and the read again. Then the migration 0024
indexes are dropped and the same queries run again in the same
run: the baseline is the same code on the indexes the orders table had before (merchant_id
alone among them). Times are printed, never asserted.

Run: ``.venv/bin/python bench/console_orders.py [--orders 1000000 --merchants 200 --runs 30]``.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

import sqlalchemy as sa  # noqa: E402
from _wrk import machine, throwaway_database  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from tuanbox.catalog.models import Merchant, Product, Sku  # noqa: E402
from tuanbox.db.engine import make_engine, make_session_factory  # noqa: E402
from tuanbox.merchant_orders import export  # noqa: E402
from tuanbox.merchant_orders.counters import compact_tab_counts  # noqa: E402
from tuanbox.merchant_orders.listing import (  # noqa: E402
    OrderFilter,
    Scope,
    list_orders,
    reconcile_tab_counts,
    stream_rows,
    tab_counts,
)
from tuanbox.merchant_orders.tabs import Tab  # noqa: E402
from tuanbox.settings import Settings  # noqa: E402

INDEXES = ("ix_orders_merchant_created", "ix_orders_merchant_status_created")

USERS_SQL = """
INSERT INTO users (id, role, display_name, active, token_version, created_at, updated_at)
SELECT 'u-' || lpad(i::text, 6, '0'), 'shopper', 'Shopper ' || i, true, 0, now(), now()
FROM generate_series(0, :users - 1) AS i
"""

# Cubic skew over merchants; statuses in shares close to a live business.
ORDERS_SQL = """
INSERT INTO orders (id, user_id, merchant_id, sku_id, qty, unit_price_cents, total_cents,
                    paid_cents, refunded_cents, status, kind, stock_held, risk_hold, awaiting,
                    picked_up_at, created_at, updated_at)
SELECT gen_random_uuid()::text, 'u-' || lpad(u::text, 6, '0'), 'm-' || lpad(m::text, 4, '0'),
       's-' || lpad(m::text, 4, '0'), 1, 1990, 1990,
       CASE WHEN st = 'pending_payment' THEN 0 ELSE 1990 END,
       CASE WHEN st = 'refunded' THEN 1990 ELSE 0 END,
       st, 'regular', false, false,
       CASE WHEN st = 'paid' THEN (CASE WHEN r2 < 0.5 THEN 'group' ELSE 'merchant' END) END,
       CASE WHEN st IN ('picked_up', 'completed', 'return_requested', 'returned')
                 OR (st = 'refunded' AND r2 < 0.5) THEN at + interval '1 day' END,
       at, at
FROM (
  SELECT floor(:merchants * power(random(), 3))::int AS m,
         floor(:users * random())::int AS u,
         timestamptz '2025-12-01 00:00+08' + random() * interval '365 days' AS at,
         random() AS r2,
         CASE WHEN r < 0.03 THEN 'pending_payment' WHEN r < 0.08 THEN 'paid'
              WHEN r < 0.13 THEN 'confirmed' WHEN r < 0.15 THEN 'allocated'
              WHEN r < 0.20 THEN 'ready_for_pickup' WHEN r < 0.25 THEN 'picked_up'
              WHEN r < 0.85 THEN 'completed' WHEN r < 0.88 THEN 'refunded'
              WHEN r < 0.92 THEN 'cancelled' WHEN r < 0.95 THEN 'expired'
              WHEN r < 0.97 THEN 'return_requested' WHEN r < 0.98 THEN 'returned'
              ELSE 'quality_hold' END AS st
  FROM (SELECT random() AS r FROM generate_series(1, :orders)) AS g
) AS o
"""


def _times(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def _deep_cursor(session: Session, scope: Scope) -> str:
    cursor = None
    for _ in range(100):  # 100 pages of 50
        page = list_orders(session, scope, OrderFilter(), cursor=cursor)
        cursor = page.next_cursor
        if cursor is None:
            break
    return cursor or ""


def _cases(
    session: Session, scope: Scope, day: date, prefix: str
) -> dict[str, Callable[[], object]]:
    deep = _deep_cursor(session, scope)
    return {
        "first page, all": lambda: list_orders(session, scope, OrderFilter()),
        "first page, 待发货": lambda: list_orders(session, scope, OrderFilter(tab=Tab.TO_SHIP)),
        "first page, 售后": lambda: list_orders(session, scope, OrderFilter(tab=Tab.AFTER_SALES)),
        "page 101 (keyset)": lambda: list_orders(session, scope, OrderFilter(), cursor=deep),
        "tab counts": lambda: tab_counts(session, scope, OrderFilter()),
        "tab counts, counted from the orders": lambda: tab_counts(
            session, scope, OrderFilter(), counters=False
        ),
        "one day, first page": lambda: list_orders(
            session, scope, OrderFilter(date_from=day, date_to=day)
        ),
        "search id prefix": lambda: list_orders(session, scope, OrderFilter(q=prefix)),
    }


def _run(factory: Callable[[], Session], settings: Settings, merchants: list[str], runs: int,
         label: str) -> dict[tuple[str, str], tuple[float, float]]:  # fmt: skip
    out: dict[tuple[str, str], tuple[float, float]] = {}
    with factory() as session:
        for merchant in merchants:
            scope = Scope(merchant, settings)
            prefix = session.scalar(
                sa.text("SELECT id FROM orders WHERE merchant_id = :m LIMIT 1"), {"m": merchant}
            )[:8]
            cases = _cases(session, scope, date(2026, 6, 1), prefix)
            for name, fn in cases.items():
                out[(merchant, name)] = _times(fn, runs)
            flt = OrderFilter(date_from=date(2026, 6, 1), date_to=date(2026, 6, 30))
            start = time.perf_counter()
            rows = sum(1 for _ in stream_rows(session, scope, flt))
            took = time.perf_counter() - start
            start = time.perf_counter()
            size = sum(len(c) for c in export.csv_chunks(session, scope, flt))
            csv_took = time.perf_counter() - start
            out[(merchant, "export month (rows/s)")] = (rows / took, rows / csv_took)
            print(f"  [{label}] {merchant}: a month is {rows} orders, CSV {size / 1e6:.1f} MB",
                  flush=True)  # fmt: skip
    return out


def _pending_deltas(factory: Callable[[], Session], settings: Settings, merchants: list[str],
                    runs: int) -> dict[tuple[str, str], tuple[float, float]]:  # fmt: skip
    """The tab counts read with deltas not yet compacted (migration 0036): each merchant's
    orders moved one statement at a time (two delta rows each), read, then compacted."""
    out: dict[tuple[str, str], tuple[float, float]] = {}
    with factory() as session:
        assert compact_tab_counts(session) is not None
        session.commit()
        for merchant in merchants:
            scope = Scope(merchant, settings)
            ids = session.scalars(sa.text(
                "SELECT id FROM orders WHERE merchant_id = :m AND status = 'completed' LIMIT 1000"
            ), {"m": merchant}).all()  # fmt: skip
            move = sa.text("UPDATE orders SET status = 'returned' WHERE id = :id")
            for order_id in ids:  # completed -> after-sales: a -1 and a +1 delta
                session.execute(move, {"id": order_id})
            session.commit()
            deltas = session.scalar(sa.text(
                "SELECT count(*) FROM order_tab_deltas WHERE merchant_id = :m"), {"m": merchant}
            )  # fmt: skip
            read = functools.partial(tab_counts, session, scope, OrderFilter())
            out[(merchant, f"{deltas} deltas pending")] = _times(read, runs)
            kept = tab_counts(session, scope, OrderFilter())
            assert kept == tab_counts(session, scope, OrderFilter(), counters=False), merchant
            start = time.perf_counter()
            folded = compact_tab_counts(session)
            session.commit()
            took = (time.perf_counter() - start) * 1000
            out[(merchant, f"compaction of {folded} deltas (once)")] = (took, took)
            assert tab_counts(session, scope, OrderFilter()) == kept
            out[(merchant, "0 deltas pending (compacted)")] = _times(read, runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--users", type=int, default=150_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(f"# console orders bench: {machine()}")
    with throwaway_database() as url:
        settings = Settings(_env_file=None, env="development", database_url=url)
        engine = make_engine(url)
        factory = make_session_factory(engine, settings)
        start = time.perf_counter()
        with factory() as session:
            for i in range(args.merchants):
                session.add(Merchant(id=f"m-{i:04d}", name=f"Farm {i}", licence_number=f"L-{i}"))
                session.add(Product(id=f"p-{i:04d}", merchant_id=f"m-{i:04d}", name=f"Peach {i}",
                                    size_class="S", zone="ambient"))  # fmt: skip
                session.add(Sku(id=f"s-{i:04d}", product_id=f"p-{i:04d}", name="1 kg",
                                price_cents=1990, stock_on_hand=0))  # fmt: skip
                session.flush()
            session.commit()
        with engine.begin() as conn:
            conn.execute(sa.text(USERS_SQL), {"users": args.users})
            conn.execute(sa.text(ORDERS_SQL), {"merchants": args.merchants, "users": args.users,
                                               "orders": args.orders})  # fmt: skip
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE orders"))
        print(f"  seeded {args.orders} orders in {time.perf_counter() - start:.0f} s")
        with engine.connect() as conn:
            counts = conn.execute(sa.text(
                "SELECT merchant_id, count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC"
            )).all()  # fmt: skip
        largest, median = counts[0], counts[len(counts) // 2]
        print(f"  largest merchant {largest[0]}: {largest[1]} orders; "
              f"median {median[0]}: {median[1]}")  # fmt: skip
        merchants = [largest[0], median[0]]
        with factory() as session:
            start = time.perf_counter()
            wrong = reconcile_tab_counts(session)
            session.commit()
            print(f"  tab counters (kept by the statement triggers during the load) checked by "
                  f"a reconciliation over {args.orders} orders in "
                  f"{time.perf_counter() - start:.1f} s: {wrong} counts wrong")  # fmt: skip
            # Then kept by the trigger: 2,000 transitions, and the counters match a recount.
            session.execute(sa.text(
                "UPDATE orders SET status = 'picked_up', picked_up_at = now() WHERE id IN"
                " (SELECT id FROM orders WHERE status = 'ready_for_pickup' LIMIT 2000)"
            ))  # fmt: skip
            session.commit()
            for merchant in merchants:
                scope = Scope(merchant, settings)
                kept = tab_counts(session, scope, OrderFilter())
                assert kept == tab_counts(session, scope, OrderFilter(), counters=False), merchant
            assert reconcile_tab_counts(session) == 0
            session.commit()
        indexed = _run(factory, settings, merchants, args.runs, "indexed")
        pending = _pending_deltas(factory, settings, merchants, args.runs)
        with engine.begin() as conn:
            for name in INDEXES:
                conn.execute(sa.text(f"DROP INDEX {name}"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE orders"))
        baseline = _run(factory, settings, merchants, args.runs, "baseline")
        engine.dispose()
    print()
    print("| merchant (orders) | tab counts, deltas pending | p50 / p99 ms |")
    print("| --- | --- | --- |")
    for (merchant, name), (p50, p99) in pending.items():
        print(f"| {merchant} | {name} | {p50:.1f} / {p99:.1f} |")
    print()
    print("| merchant (orders) | query | 0024 indexes p50 / p99 ms | without p50 / p99 ms |")
    print("| --- | --- | --- | --- |")
    sizes: dict[str, int] = dict(counts)
    for (merchant, name), (p50, p99) in indexed.items():
        b50, b99 = baseline[(merchant, name)]
        who = f"{merchant} ({sizes[merchant]})"
        if name.startswith("export"):
            print(f"| {who} | {name}: read / CSV | {p50:,.0f} / {p99:,.0f} | "
                  f"{b50:,.0f} / {b99:,.0f} |")  # fmt: skip
        else:
            print(f"| {who} | {name} | {p50:.1f} / {p99:.1f} | {b50:.1f} / {b99:.1f} |")


if __name__ == "__main__":
    main()
