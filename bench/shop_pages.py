"""Benchmark: the shopper home page through HTTP, driven by wrk, against `GET /healthz` in the
same run, with the Redis page cache on and off.

A production-mode `tuanbox api --workers 2` (secrets generated for the run, see bench/_wrk.py)
serves a throwaway PostgreSQL database holding `make run`'s demo catalogue (bench's own copy:
merchants with photos, campaigns of every kind with groups under way, two flash sales, the
anchored lot). With the same wrk settings (2 threads, 64 connections, 15 s) it measures:

1. `GET /healthz` (the HTTP ceiling of this box at that moment),
2. `GET /` (home: today's picks, flash-sale zone, campaign cards) from the page cache,
3. `GET /c/{id}` (a campaign page) from the page cache,
4. `GET /healthz` again; ratios use the mean of the two baselines;

then restarts the server with `TUANBOX_SHOP_CACHE_TTL_S=0` and measures `GET /` rendered
from the database every time. It also prints each page's weight (HTML + CSS + JS bytes).

Run: ``.venv/bin/python bench/shop_pages.py [--duration 15]`` (needs anvil for the lot).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

import httpx  # noqa: E402
from _wrk import (  # noqa: E402
    WrkResult,
    api_server,
    free_port,
    machine,
    production_env,
    run_wrk,
    settings_from,
    throwaway_database,
)

from tuanbox.db.engine import make_engine, make_session_factory  # noqa: E402

ASSET = re.compile(r'(?:href|src)="(/shop/static/[^"]+)"')


def seed(env: dict[str, str]) -> Any:
    """`make run`'s demo catalogue in the bench database (seeded as development: SimPay pays
    the groups under way; the server itself runs in production mode)."""
    from tuanbox.run_catalogue import load

    settings = settings_from({**env, "TUANBOX_ENV": "development"})
    engine = make_engine(settings.database_url)
    try:
        return load(make_session_factory(engine, settings), settings, name="bench")
    finally:
        engine.dispose()


def weight(base: str, path: str) -> int:
    """Bytes of the page's HTML plus the stylesheet and script it loads."""
    html = httpx.get(base + path, headers={"Accept-Language": "zh-CN"}).text
    assets = sum(len(httpx.get(base + a).content) for a in set(ASSET.findall(html)))
    return len(html.encode()) + assets


def measure(base: str, path: str, args: argparse.Namespace) -> WrkResult:
    script = "healthz.lua" if path == "/healthz" else "shop_page.lua"
    return run_wrk(base, script, threads=args.threads, connections=args.connections,
                   duration_s=args.duration, env={"BENCH_PATH": path})  # fmt: skip


def ratio(rate: float, baseline: float) -> str:
    return f"{rate / baseline:.2f}" if baseline else "n/a (no answer to compare with)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="tuanbox api --workers")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    args = parser.parse_args()
    print(machine())
    print(f"api workers={args.workers}; wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s")  # fmt: skip
    with throwaway_database() as url, tempfile.TemporaryDirectory() as media:
        port = free_port()
        env = production_env(url, port, TUANBOX_MEDIA_DIR=media,
                             TUANBOX_SHOP_CACHE_PREFIX=f"bench{port}:shop:")  # fmt: skip
        loaded = seed(env)
        campaign = f"/c/{loaded.campaigns['tiered']}"
        with api_server(env, args.workers) as (base, _proc):
            for path in ("/", campaign):
                print(f"page weight {path}: {weight(base, path):,} bytes (HTML + CSS + JS)")
            httpx.get(base + "/")  # warm the cache (the first request renders)
            first = measure(base, "/healthz", args)
            print(f"GET /healthz           {first.describe()}")
            home = measure(base, "/", args)
            print(f"GET / (cached)         {home.describe()}")
            page = measure(base, campaign, args)
            print(f"GET /c/… (cached)      {page.describe()}")
            second = measure(base, "/healthz", args)
            print(f"GET /healthz again     {second.describe()}")
        baseline = (first.rate + second.rate) / 2
        print(f"home (cached) / healthz = {ratio(home.rate, baseline)}; "
              f"campaign (cached) / healthz = {ratio(page.rate, baseline)}")  # fmt: skip
        off = {**env, "TUANBOX_SHOP_CACHE_TTL_S": "0"}
        with api_server(off, args.workers) as (base, _proc):
            uncached = measure(base, "/", args)
            print(f"GET / (cache off)      {uncached.describe()}")
        # A box too loaded to render one uncached page within wrk's timeout has no ratio.
        print(f"home cached / uncached = {ratio(home.rate, uncached.rate)}")
    print(f"load at the end: {machine().split('uptime:', 1)[1]}")


if __name__ == "__main__":
    main()
