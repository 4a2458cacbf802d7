"""Seeded random shop histories for the report tests, and an independent recomputation.

The reference below never calls the code under test: it reads the raw rows and counts in
plain Python (the day by adding the fixed +8 h of Asia/Shanghai, not by zoneinfo).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.flashsale.models import FlashSale, Reservation
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.orders.models import Order
from tuanbox.reports.models import DailyBuyers, DailyRollup, DailyStationRollup

SHANGHAI = timedelta(hours=8)
# A local midnight (16:00 UTC) lies inside the window, so orders fall on both sides of it.
BASE = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _day(at: datetime) -> date:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (at.astimezone(UTC) + SHANGHAI).date()


@dataclass
class Shop:
    merchant_ids: list[str] = field(default_factory=list)
    skus: dict[str, str] = field(default_factory=dict)  # merchant -> sku
    campaigns: dict[str, list[str]] = field(default_factory=dict)  # merchant -> campaigns
    sales: dict[str, list[str]] = field(default_factory=dict)  # merchant -> flash sales
    users: list[str] = field(default_factory=list)
    stations: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)


def make_shop(session: Session, rng: random.Random, merchants: int = 3, users: int = 12) -> Shop:
    shop = Shop(stations=[str(uuid.uuid4()) for _ in range(3)])
    for _ in range(merchants):
        m = Merchant(name="Farm", licence_number=f"LIC-{uuid.uuid4().hex[:12]}")
        session.add(m)
        session.flush()
        p = Product(merchant_id=m.id, name="Peaches")
        session.add(p)
        session.flush()
        sku = Sku(product_id=p.id, name="1 kg", price_cents=1000, stock_on_hand=10**6)
        session.add(sku)
        session.flush()
        shop.merchant_ids.append(m.id)
        shop.skus[m.id] = sku.id
        shop.campaigns[m.id] = []
        shop.sales[m.id] = []
        for _ in range(2):
            c = Campaign(
                merchant_id=m.id,
                sku_id=sku.id,
                title="Peaches together",
                kind="fixed",
                tiers=[[2, 800]],
                min_size=2,
                max_size=5,
                starts_at=BASE - timedelta(days=30),
                ends_at=BASE + timedelta(days=30),
                created_by="staff",
            )
            s = FlashSale(
                merchant_id=m.id,
                sku_id=sku.id,
                title="Flash peaches",
                price_cents=500,
                stock_cap=10**6,
                remaining=10**6,
                starts_at=BASE - timedelta(days=30),
                ends_at=BASE + timedelta(days=30),
                created_by="staff",
            )
            session.add_all([c, s])
            session.flush()
            shop.campaigns[m.id].append(c.id)
            shop.sales[m.id].append(s.id)
    for _ in range(users):
        u = User(role="shopper", display_name="shopper")
        session.add(u)
        session.flush()
        shop.users.append(u.id)
    return shop


def _when(rng: random.Random) -> datetime:
    # Ten days around BASE, many close to a local midnight.
    day = rng.randrange(-5, 5)
    if rng.random() < 0.4:
        minutes = rng.randrange(-20, 20)
        return BASE + timedelta(days=day, hours=4, minutes=minutes)  # 16:00 UTC ± 20 min
    return BASE + timedelta(days=day, seconds=rng.randrange(86400))


def step(session: Session, shop: Shop, rng: random.Random) -> str:
    """One random change to the shop's history; returns what it did."""
    roll = rng.random()
    if roll < 0.35 or not shop.orders:
        m = rng.choice(shop.merchant_ids)
        kind = rng.choice(["regular", "group", "flash"])
        qty = rng.randrange(1, 4)
        group_id = None
        created = _when(rng)
        if kind == "group":
            if shop.groups and rng.random() < 0.6:
                group_id = rng.choice(shop.groups)
                g = session.get(Group, group_id)
                assert g is not None
                c = session.get(Campaign, g.campaign_id)
                assert c is not None
                m = c.merchant_id
            else:
                g = Group(
                    campaign_id=rng.choice(shop.campaigns[m]),
                    min_size=2,
                    max_size=5,
                    deadline_at=created + timedelta(days=1),
                    created_at=created,
                )
                session.add(g)
                session.flush()
                shop.groups.append(g.id)
                group_id = g.id
        order = Order(
            user_id=rng.choice(shop.users),
            merchant_id=m,
            sku_id=shop.skus[m],
            qty=qty,
            unit_price_cents=700,
            total_cents=700 * qty,
            kind=kind,
            group_id=group_id,
            station_id=rng.choice([*shop.stations, None]),
            created_at=created,
        )
        session.add(order)
        session.flush()
        if kind == "flash":
            session.add(
                Reservation(
                    sale_id=rng.choice(shop.sales[m]),
                    user_id=order.user_id,
                    request_id=uuid.uuid4().hex,
                    qty=qty,
                    order_id=order.id,
                )
            )
        shop.orders.append(order.id)
        return "create"
    order = session.get(Order, rng.choice(shop.orders))
    assert order is not None
    if roll < 0.6 and order.paid_at is None:
        order.paid_at = order.created_at + timedelta(minutes=rng.randrange(1, 3000))
        order.paid_cents = order.total_cents
        order.status = "paid"
        return "pay"
    if roll < 0.7 and order.paid_at is not None and order.picked_up_at is None:
        order.picked_up_at = order.paid_at + timedelta(days=1)
        order.status = "picked_up"
        return "pickup"
    if roll < 0.85 and order.paid_cents > order.refunded_cents:
        # A refund days later: it must land on the order's day.
        order.refunded_cents += rng.randrange(1, order.paid_cents - order.refunded_cents + 1)
        return "refund"
    if shop.groups:
        g = session.get(Group, rng.choice(shop.groups))
        assert g is not None
        g.status = rng.choice(["open", "filled", "confirmed", "failed"])
        return "group"
    return "none"


# ("campaign" | "station", merchant, day, campaign or station id)
Key = tuple[str, str, date, str]


def reference(session: Session, merchant_ids: list[str]) -> dict[Key, dict[str, int]]:
    """report_daily and report_daily_stations as they should be, counted in Python."""
    out: dict[Key, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    groups = {g.id: g for g in session.scalars(select(Group))}
    campaigns = {c.id: c for c in session.scalars(select(Campaign))}
    sale_of = {o: s for o, s in session.execute(select(Reservation.order_id, Reservation.sale_id))}
    for o in session.scalars(select(Order).where(Order.merchant_id.in_(merchant_ids))):
        campaign = groups[o.group_id].campaign_id if o.group_id else sale_of.get(o.id, "")
        day = _day(o.created_at)
        for key in (("campaign", o.merchant_id, day, campaign),
                    ("station", o.merchant_id, day, o.station_id or "")):  # fmt: skip
            r = out[key]
            r["orders"] += 1
            r["paid_orders"] += o.paid_at is not None
            r["gmv_cents"] += o.paid_cents
            r["picked_up"] += o.picked_up_at is not None
            r["refunded_orders"] += o.refunded_cents > 0
            r["refund_cents"] += o.refunded_cents
    for g in groups.values():
        c = campaigns[g.campaign_id]
        if c.merchant_id not in merchant_ids:
            continue
        day = _day(g.created_at)
        for key in (("campaign", c.merchant_id, day, g.campaign_id),
                    ("station", c.merchant_id, day, "")):  # fmt: skip
            r = out[key]
            r["groups_opened"] += 1
            r["groups_succeeded"] += g.status == "confirmed"
            r["groups_failed"] += g.status == "failed"
    return {k: {n: v for n, v in r.items() if v} for k, r in out.items()}


def reference_buyers(session: Session, merchant_ids: list[str]) -> dict[Any, tuple[int, int]]:
    paid = [
        o
        for o in session.scalars(select(Order).where(Order.merchant_id.in_(merchant_ids)))
        if o.paid_at is not None
    ]
    first: dict[tuple[str, str], date] = {}
    for o in paid:
        d = _day(o.created_at)
        key = (o.merchant_id, o.user_id)
        first[key] = min(first.get(key, d), d)
    firsts_today: dict[tuple[str, str, date], Order] = {}
    for o in paid:
        key3 = (o.merchant_id, o.user_id, _day(o.created_at))
        seen = firsts_today.get(key3)
        if seen is None or (o.created_at, o.id) < (seen.created_at, seen.id):
            firsts_today[key3] = o
    counts: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
    for (m, u, d), o in firsts_today.items():
        counts[(m, d, o.station_id or "")][0 if first[(m, u)] == d else 1] += 1
    return {k: (n, r) for k, (n, r) in counts.items()}


def stored(session: Session, merchant_ids: list[str]) -> dict[Key, dict[str, int]]:
    names = ["orders", "paid_orders", "gmv_cents", "picked_up", "refunded_orders"]
    names += ["refund_cents", "groups_opened", "groups_succeeded", "groups_failed"]
    out: dict[Key, dict[str, int]] = {}
    for r in session.scalars(select(DailyRollup).where(DailyRollup.merchant_id.in_(merchant_ids))):
        values = {n: getattr(r, n) for n in names if getattr(r, n)}
        out[("campaign", r.merchant_id, r.day, r.campaign_id)] = values
    for s in session.scalars(
        select(DailyStationRollup).where(DailyStationRollup.merchant_id.in_(merchant_ids))
    ):
        values = {n: getattr(s, n) for n in names if getattr(s, n)}
        out[("station", s.merchant_id, s.day, s.station_id)] = values
    # A row whose counts are all zero (an order moved away) says nothing; compare without.
    return {k: v for k, v in out.items() if v}


def stored_buyers(session: Session, merchant_ids: list[str]) -> dict[Any, tuple[int, int]]:
    rows = session.scalars(select(DailyBuyers).where(DailyBuyers.merchant_id.in_(merchant_ids)))
    return {
        (r.merchant_id, r.day, r.station_id): (r.new_buyers, r.repeat_buyers)
        for r in rows
        if r.new_buyers or r.repeat_buyers
    }
