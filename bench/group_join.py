"""Benchmark: 2,000 shoppers joining 200 groups at once through HTTP (wrk), against /healthz.

A production-mode `tuanbox api --workers 2` on a throwaway PostgreSQL database (secrets
generated for the run; bench/_wrk.py). One campaign; 200 groups opened by 200 leaders
beforehand, each with room for 9 more (max size 10); each group is the target of 10 of the
2,000 shoppers, so 1,800 joins must win and 200 meet a full group. The campaign sets its
stock aside when it is created (`stock_cap`, one unit per seat), so a join draws from its
group's chunk and never takes the SKU row (`--uncapped`: each join reserves from the SKU,
the design before 0022, for comparison). wrk (2 threads, 64
connections) sends every shopper's join once, with an Idempotency-Key, as fast as the server
answers; `GET /healthz` runs with the same wrk settings before and after (15 s each).

It prints both rates, the ratio, p50/p99 (wrk's latency histogram), the answers by status
and problem code, and the database check: no group over its size, every seat a member and
every member an order (seats taken = members = 10 per group), 1,800 joiners' orders, and the
SKU's reserved units = the campaign's pool + the groups' unused units + the orders' units.

With ``--writes stream`` (TUANBOX_GROUP_JOIN_WRITES=stream) a join is admitted by the seats'
Redis script and answered 202 at once, and `tuanbox group-joins` (started beside the API)
writes the rows; Redis is the bench's own with `appendfsync always` (the durability that
mode needs), and the bench also prints how long after the load the consumer had written
every admitted join (the database check runs after that).

Run: ``.venv/bin/python bench/group_join.py [--shoppers 2000 --groups 200] [--writes stream]``.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "platform"))

import sqlalchemy as sa  # noqa: E402
from _wrk import (  # noqa: E402
    CpuClock,
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
from tuanbox.db.base import utcnow  # noqa: E402
from tuanbox.db.engine import make_engine, make_session_factory, session_scope  # noqa: E402
from tuanbox.groupbuy import services  # noqa: E402
from tuanbox.groupbuy.domain import CampaignKind, Tier  # noqa: E402
from tuanbox.groupbuy.models import Campaign, Group, Member  # noqa: E402
from tuanbox.groupbuy.spec import CampaignSpec  # noqa: E402
from tuanbox.orders.models import Order  # noqa: E402


def seed(
    url: str, shoppers: int, groups: int, size: int, *, capped: bool, settings: Any = None
) -> tuple[list[str], list[str], str]:
    """A campaign with `groups` open groups (leaders seated) and `shoppers` shoppers. With
    the server's `settings` bound (stream writes), the openings commit as the API's do, so
    their groups' seats are put into Redis then (`groupbuy.seats.hold_after_commit`)."""
    engine = make_engine(url)
    with session_scope(make_session_factory(engine, settings)) as s:
        merchant = Merchant(name="Bench Orchard", licence_number=f"B-{uuid.uuid4().hex[:8]}")
        s.add(merchant)
        s.flush()
        product = Product(merchant_id=merchant.id, name="Lychees 1 kg")
        s.add(product)
        s.flush()
        sku = Sku(product_id=product.id, name="1 kg", price_cents=3000, stock_on_hand=10**6)
        staff = User(role="merchant_staff", merchant_id=merchant.id)
        leaders = [User(role="shopper") for _ in range(groups)]
        users = [User(role="shopper") for _ in range(shoppers)]
        s.add_all([sku, staff, *leaders, *users])
        s.flush()
        now = utcnow()
        campaign = services.create_campaign(
            s,
            merchant_id=merchant.id,
            actor_id=staff.id,
            spec=CampaignSpec(
                sku_id=sku.id,
                title="lychees",
                kind=CampaignKind.FIXED,
                tiers=(Tier(size, 2000),),
                max_size=size,
                starts_at=now - timedelta(minutes=1),
                ends_at=now + timedelta(days=1),
                stock_cap=groups * size if capped else None,
            ),
        )
        group_ids = [
            services.open_group(s, campaign_id=campaign.id, user_id=leader.id, now=now).group.id
            for leader in leaders
        ]
        user_ids = [u.id for u in users]
        sku_id = sku.id
    engine.dispose()
    return group_ids, user_ids, sku_id


def check_database(url: str, group_ids: list[str], size: int, sku_id: str) -> dict[str, Any]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as s:
        rows = s.execute(
            sa.select(Group.id, Group.seats_taken, Group.max_size, sa.func.count(Member.id))
            .join(Member, Member.group_id == Group.id)
            .where(Group.id.in_(group_ids))
            .group_by(Group.id)
        ).all()
        orders = s.scalar(
            sa.select(sa.func.count()).select_from(Order).where(Order.group_id.in_(group_ids))
        )
        members = s.scalar(
            sa.select(sa.func.count()).select_from(Member).where(Member.group_id.in_(group_ids))
        )
        orphan_members = s.scalar(
            sa.select(sa.func.count())
            .select_from(Member)
            .outerjoin(Order, Order.id == Member.order_id)
            .where(Member.group_id.in_(group_ids), Order.id.is_(None))
        )
        sku = s.get(Sku, sku_id)
        pool = s.scalar(sa.select(sa.func.sum(Campaign.stock_remaining))) or 0
        chunks = s.scalar(sa.select(sa.func.sum(Group.units_held - Group.units_taken))) or 0
        held = s.scalar(sa.select(sa.func.sum(Order.qty)).where(Order.stock_held.is_(True))) or 0
        assert sku is not None
        stock = {
            "sku_reserved": sku.stock_reserved,
            "pool+chunks+orders": int(pool) + int(chunks) + int(held),
        }
    engine.dispose()
    return {
        "groups": len(rows),
        "overfilled": sum(1 for r in rows if r[1] > r[2] or r[3] > r[2]),
        "seat_without_member": sum(1 for r in rows if r[1] != r[3]),
        "full_groups": sum(1 for r in rows if r[3] == size),
        "members": int(members or 0),
        "orders": int(orders or 0),
        "members_without_order": int(orphan_members or 0),
        **stock,
    }


def groups_in_redis(redis_url: str) -> int:
    """Stream writes: how many groups' seats Redis holds (loaded when they opened)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        return sum(1 for _ in client.scan_iter(match="*:gb:{gb:*}:seat", count=1000))
    finally:
        client.close()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (0 once it is gone)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_members(url: str, group_ids: list[str], want: int, timeout_s: float = 300) -> float:
    """Stream writes: seconds until the consumer has written `want` members."""
    engine = make_engine(url)
    started = time.monotonic()
    try:
        while True:
            with engine.connect() as conn:
                n = conn.scalar(
                    sa.select(sa.func.count())
                    .select_from(Member)
                    .where(Member.group_id.in_(group_ids))
                )
            if (n or 0) >= want or time.monotonic() - started > timeout_s:
                return time.monotonic() - started
            time.sleep(0.1)  # polling the consumer's progress with a deadline
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shoppers", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=200)
    parser.add_argument("--size", type=int, default=10, help="group size, leader included")
    parser.add_argument("--workers", type=int, default=2, help="tuanbox api --workers")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--duration", type=int, default=15, help="seconds of each /healthz run")
    parser.add_argument(
        "--uncapped",
        action="store_true",
        help="no stock set aside: every join reserves from the SKU (the design before 0022)",
    )
    parser.add_argument(
        "--writes",
        choices=("request", "stream"),
        default="request",
        help="TUANBOX_GROUP_JOIN_WRITES: rows written in the request, or by `tuanbox group-joins`",
    )
    parser.add_argument(
        "--set", action="append", default=[], help="TUANBOX_X=value for the server (repeatable)"
    )
    args = parser.parse_args()
    print(machine())
    print(
        f"shoppers={args.shoppers} groups={args.groups} size={args.size} api "
        f"workers={args.workers}; wrk -t{args.threads} -c{args.connections}; "
        f"{'uncapped (each join reserves from the SKU)' if args.uncapped else 'stock set aside'}"
        f"; writes: {args.writes}"
    )
    stream = args.writes == "stream"
    with (
        throwaway_database() as url,
        durable_redis() if stream else contextlib.nullcontext(None) as redis_url,
    ):
        port = free_port()
        extra = dict(kv.split("=", 1) for kv in args.set)
        if stream:
            extra |= {"TUANBOX_GROUP_JOIN_WRITES": "stream", "TUANBOX_REDIS_URL": redis_url}
        env = production_env(url, port, TUANBOX_GROUP_JOIN_PER_IP_PER_MIN=str(10**7), **extra)
        settings = settings_from(env)
        group_ids, users, sku_id = seed(
            url,
            args.shoppers,
            args.groups,
            args.size,
            capped=not args.uncapped,
            settings=settings if stream else None,
        )
        if redis_url is not None:
            print(f"  groups in Redis before the first join: {groups_in_redis(redis_url)}")
        lines = [
            f"{issue_access_token(settings, Principal(u, 'shopper'))} "
            f"{group_ids[i % len(group_ids)]} join-{i:06d}-{uuid.uuid4().hex[:8]}"
            for i, u in enumerate(users)
        ]
        wrk = {"threads": args.threads, "connections": args.connections}
        consumer = start(["group-joins"], env) if stream else None
        drained = 0.0
        cpu_line = ""
        with (
            contextlib.ExitStack() as stack,
            api_server(env, args.workers) as (base, api),
            tempfile.NamedTemporaryFile("w", suffix=".joins") as joins,
        ):
            if consumer is not None:
                stack.callback(consumer.stop)
            joins.write("\n".join(lines) + "\n")
            joins.flush()
            before = memory_kib(api.workers())
            health1 = run_wrk(base, "healthz.lua", duration_s=args.duration, **wrk)
            pids = api.workers()
            cpu_start = CpuClock.now(pids, redis_url) if redis_url else None
            consumer_start = process_cpu_s(consumer.popen.pid) if consumer else 0.0
            wall_start = time.monotonic()
            join = run_wrk(
                base,
                "group_join.lua",
                duration_s=120,
                env={"BENCH_JOINS": joins.name, "BENCH_THREADS": str(args.threads)},
                by_clock=True,
                **wrk,
            )
            ended = time.monotonic()
            if cpu_start is not None and consumer is not None and redis_url:
                workers_us, redis_us, wrk_us = cpu_start.per_answer_us(
                    CpuClock.now(pids, redis_url), join.responses
                )
                consumer_us = (
                    (process_cpu_s(consumer.popen.pid) - consumer_start)
                    / max(join.responses, 1)
                    * 1e6
                )
                cpu_line = (
                    f"  CPU per join answer during the joins' run ({ended - wall_start:.1f} s "
                    f"wall, wrk's start and end included): API workers {workers_us:,.0f} "
                    f"us, consumer {consumer_us:,.0f} us, Redis {redis_us:,.0f} us, wrk "
                    f"{wrk_us:,.0f} us"
                )
            health2 = run_wrk(base, "healthz.lua", duration_s=args.duration, **wrk)
            after = memory_kib(api.workers())
            if consumer is not None:
                want = args.groups * args.size
                wait_for_members(url, group_ids, want)
                drained = time.monotonic() - ended
                consumer.stop()
        healthz = (health1.rate + health2.rate) / 2
        print(f"  GET /healthz (before): {health1.describe()}")
        print(f"  joins:                 {join.describe()}")
        print(f"  GET /healthz (after):  {health2.describe()}")
        print(
            f"  ratio joins / healthz: {join.rate / healthz:.3f} ({join.rate:,.0f} / "
            f"{healthz:,.0f} req/s); joins p50 {join.p50_ms:.1f} ms, p99 {join.p99_ms:.1f} ms; "
            f"{join.extra} retries sent while the last answers were on their way"
        )
        for pid, (rss, _) in sorted(before.items()):
            rss_after, peak = after.get(pid, (0, 0))
            print(
                f"  API worker {pid}: RSS {rss / 1024:.1f} MiB before, "
                f"{rss_after / 1024:.1f} MiB after (peak {peak / 1024:.1f} MiB)"
            )
        if cpu_line:
            print(cpu_line)
        if consumer is not None:
            print(
                f"  consumer: every admitted join written {drained:.1f} s after the joins' "
                f"load ended (the /healthz run after it included)"
            )
        print(f"  database: {check_database(url, group_ids, args.size, sku_id)}")
    print(f"load at the end: {machine().split('uptime:', 1)[1]}")


if __name__ == "__main__":
    main()
