"""Benchmark: recommendation quality (hit rate@10) and the cost of keeping the counts current.

A generated order history with the structure a community group-buy has: shoppers at
stations, products in categories with complementary pairs (hotpot base and beef slices),
Zipf popularity, some products popular at some stations only, shoppers with favourite
categories, and repeat buying. Each shopper's last order is held out; the model is built
from the rest with ``tuanbox.recommend.domain`` (the code the pages use) and asked for ten
products per shopper:

- popularity alone: the ten most ordered products at the shopper's station (what a shop
  without recommendations would show), and the same without what the shopper already has;
- the blend: co-occurrence over the shopper's history + popularity at the station (the home
  page's "猜你喜欢", which leaves out what the shopper has), and the same keeping it (what a
  "buy again" list would add).

A hit is the held-out product among the ten; rates are printed for all held-out orders and
for those of a product new to the shopper (what a recommendation is for). Then, in a
throwaway PostgreSQL database, the counts of the training orders are loaded by a full rebuild
(timed), and the held-out orders are applied one by one through ``services.record`` (the
order hook's work), each in its own transaction: p50/p99 ms per order, against the full
rebuild that a batch job would run instead. Times are printed, never asserted.

Run: ``.venv/bin/python bench/recommend.py [--shoppers 5000 --stations 30 --products 300]``.
"""

from __future__ import annotations

import argparse
import bisect
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

from _wrk import machine, throwaway_database  # noqa: E402

from tuanbox.db.engine import make_engine, make_session_factory  # noqa: E402
from tuanbox.recommend import domain, services  # noqa: E402
from tuanbox.settings import Settings  # noqa: E402

Order = tuple[str, str, str, str, datetime]  # id, shopper, product, station, at


class Sampler:
    def __init__(self, items: list[str], weights: list[float]) -> None:
        self.items = items
        self.cum = list(accumulate(weights))

    def __call__(self, rng: random.Random) -> str:
        return self.items[bisect.bisect_left(self.cum, rng.random() * self.cum[-1])]


def generate(args: argparse.Namespace, rng: random.Random) -> list[Order]:
    n_cat = max(1, args.products // 15)
    products = [f"p{i:04d}" for i in range(args.products)]
    category = {p: i % n_cat for i, p in enumerate(products)}
    by_cat: dict[int, list[str]] = {}
    for p in products:
        by_cat.setdefault(category[p], []).append(p)
    rank = products[:]
    rng.shuffle(rank)
    zipf = {p: 1.0 / (r + 1) ** 1.05 for r, p in enumerate(rank)}
    # Complementary pairs: each product has one or two partners in other categories.
    partners: dict[str, list[str]] = {p: [] for p in products}
    for p in products:
        for _ in range(rng.choice((1, 2))):
            q = rng.choice(products)
            if category[q] != category[p]:
                partners[p].append(q)
                partners[q].append(p)
    stations = [f"st{i:02d}" for i in range(args.stations)]
    station_pick: dict[str, Sampler] = {}
    for s in stations:
        local = set(rng.sample(products, len(products) // 10))  # popular here only
        station_pick[s] = Sampler(products, [zipf[p] * (6.0 if p in local else 1.0)
                                             for p in products])  # fmt: skip
    cat_pick = {c: Sampler(ps, [zipf[p] for p in ps]) for c, ps in by_cat.items()}
    start = datetime(2026, 9, 1, tzinfo=UTC)
    orders: list[Order] = []
    for u in range(args.shoppers):
        user = f"u{u:05d}"
        station = stations[min(int(rng.paretovariate(1.2)) - 1, len(stations) - 1)
                           if rng.random() < 0.5 else rng.randrange(len(stations))]  # fmt: skip
        favourites = rng.sample(range(n_cat), 2)
        n = max(1, min(60, int(rng.lognormvariate(1.8, 0.7))))
        bought: list[str] = []
        at = start + timedelta(hours=rng.randrange(24 * 10))
        for _ in range(n):
            roll = rng.random()
            if bought and roll < 0.25:  # buys it again
                item = rng.choice(bought)
            elif bought and roll < 0.50 and partners[(last := rng.choice(bought))]:
                item = rng.choice(partners[last])  # what goes with it
            elif roll < 0.75:
                item = cat_pick[rng.choice(favourites)](rng)
            else:
                item = station_pick[station](rng)
            bought.append(item)
            at += timedelta(hours=rng.randrange(12, 24 * 7))
            orders.append((f"o{len(orders):07d}", user, item, station, at))
    return orders


def split(orders: list[Order]) -> tuple[list[Order], list[Order]]:
    last: dict[str, Order] = {}
    count: dict[str, int] = {}
    for o in orders:
        last[o[1]] = o  # orders are in time order per shopper
        count[o[1]] = count.get(o[1], 0) + 1
    held = {o[0] for u, o in last.items() if count[u] >= 2}
    return [o for o in orders if o[0] not in held], [o for o in orders if o[0] in held]


def evaluate(train: list[Order], test: list[Order], args: argparse.Namespace) -> dict[str, object]:
    histories: dict[str, set[str]] = {}
    station_pop: dict[str, dict[str, float]] = {}
    for _, user, product, station, _at in train:
        histories.setdefault(user, set()).add(product)
        pop = station_pop.setdefault(station, {})
        pop[product] = pop.get(product, 0.0) + 1
    buyers: dict[str, int] = {}
    for items in histories.values():
        for p in items:
            buyers[p] = buyers.get(p, 0) + 1
    flat = domain.all_pairs(histories)
    pairs: dict[str, dict[str, int]] = {}
    for (a, b), n in flat.items():
        pairs.setdefault(a, {})[b] = n
    top_pop = {s: [p for p, _ in domain.popular(pop, k=10)] for s, pop in station_pop.items()}
    hits = {"popularity": 0, "popularity, new to shopper": 0, "blend": 0,
            "blend, keeping what they bought": 0}  # fmt: skip
    new_hits = dict.fromkeys(hits, 0)
    new_total = 0
    for _, user, product, station, _at in test:
        owned = histories.get(user, set())
        pop = station_pop.get(station, {})
        recs = {
            "popularity": top_pop.get(station, []),
            "popularity, new to shopper": [p for p, _ in domain.popular(pop, k=10, exclude=owned)],
            "blend": [p for p, _ in domain.for_shopper(
                owned, pairs, buyers, pop, min_support=args.min_support,
                popularity_weight=args.weight, k=10)],
            "blend, keeping what they bought": [p for p, _ in domain.for_shopper(
                owned, pairs, buyers, pop, min_support=args.min_support,
                popularity_weight=args.weight, exclude_bought=False, k=10)],
        }  # fmt: skip
        new = product not in owned
        new_total += new
        for name, shown in recs.items():
            if product in shown:
                hits[name] += 1
                new_hits[name] += new
    return {"hits": hits, "new_hits": new_hits, "total": len(test), "new_total": new_total,
            "pairs": len(flat) // 2}  # fmt: skip


def update_costs(train: list[Order], test: list[Order], sample: int) -> dict[str, float]:
    with throwaway_database() as url:
        settings = Settings(_env_file=None, env="development", database_url=url)
        engine = make_engine(url)
        factory = make_session_factory(engine, settings)
        kept = [(o, u, p, s, at) for o, u, p, s, at in train]
        rebuilds = []
        for _ in range(2):
            t0 = time.perf_counter()
            with factory() as session:
                services.rebuild_from(session, kept)
                session.commit()
            rebuilds.append(time.perf_counter() - t0)
        times = []
        for o, u, p, s, at in test[:sample]:
            t0 = time.perf_counter()
            with factory() as session:
                assert services.record(session, order_id=o, user_id=u, product_id=p,
                                       station_id=s, at=at)  # fmt: skip
                session.commit()
            times.append((time.perf_counter() - t0) * 1000)
        replay = []
        for o, u, p, s, at in test[: min(sample, 200)]:  # a retried hook: the marker answers
            t0 = time.perf_counter()
            with factory() as session:
                assert not services.record(session, order_id=o, user_id=u, product_id=p,
                                           station_id=s, at=at)  # fmt: skip
                session.commit()
            replay.append((time.perf_counter() - t0) * 1000)
        engine.dispose()
    q = statistics.quantiles(times, n=100)
    return {"rebuild_s": min(rebuilds), "p50": statistics.median(times), "p99": q[98],
            "replay_p50": statistics.median(replay), "n": len(times)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=5000)
    parser.add_argument("--stations", type=int, default=30)
    parser.add_argument("--products", type=int, default=300)
    parser.add_argument("--min-support", type=int, default=2)
    parser.add_argument("--weight", type=float, default=0.3, help="popularity weight in the blend")
    parser.add_argument("--updates", type=int, default=2000, help="held-out orders applied")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"# recommend bench: {machine()}")
    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    orders = generate(args, rng)
    train, test = split(orders)
    print(f"  {args.shoppers} shoppers at {args.stations} stations, {args.products} products: "
          f"{len(orders)} orders ({len(train)} train, {len(test)} held out) "
          f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    t0 = time.perf_counter()
    result = evaluate(train, test, args)
    print(f"  model and {len(test)} recommendations in {time.perf_counter() - t0:.1f} s; "
          f"{result['pairs']} product pairs")  # fmt: skip
    hits, new_hits = result["hits"], result["new_hits"]
    total, new_total = result["total"], result["new_total"]
    assert isinstance(hits, dict) and isinstance(new_hits, dict)
    assert isinstance(total, int) and isinstance(new_total, int)
    print()
    print(f"| hit rate@10 | all held-out ({total}) | product new to shopper ({new_total}) |")
    print("| --- | --- | --- |")
    for name in hits:
        print(f"| {name} | {hits[name] / total:.3f} | {new_hits[name] / max(1, new_total):.3f} |")
    cost = update_costs(train, test, args.updates)
    print()
    print(f"| update | ms |\n| --- | --- |\n"
          f"| incremental per order (services.record, own transaction), p50 | {cost['p50']:.2f} |\n"
          f"| incremental per order, p99 | {cost['p99']:.2f} |\n"
          f"| replayed order (marker hit), p50 | {cost['replay_p50']:.2f} |\n"
          f"| full rebuild of {len(train)} orders | {cost['rebuild_s'] * 1000:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
