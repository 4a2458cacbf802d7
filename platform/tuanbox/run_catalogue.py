"""The demo catalogue `tuanbox run` loads: merchants, stations with lockers, campaigns of
every kind with groups under way, a flash sale running and one starting a few minutes later,
and a lot with its provenance anchored on the dev chain.

Idempotent on one database: merchants, products, stations and lockers are found by fixed
keys; offers are created again only when none of the demo's is still open, so a second
`make run` on the same SQLite file shows the same shop with fresh clocks.
"""

from __future__ import annotations

import secrets
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.accounts.models import User
from tuanbox.accounts.services import hash_password
from tuanbox.catalog.models import Merchant, Product, ProductImage, Sku
from tuanbox.db.base import utcnow
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.models import Campaign
from tuanbox.lockers.models import Locker, Station
from tuanbox.settings import Settings

LICENCE_PREFIX = "DEMO-RUN-"
# Who creates the demo's offers (their created_by): how a later run finds them again.
RUN_ACTOR = "tuanbox-run"
FLASH_STARTS_IN = timedelta(minutes=5)
STATIONS = (
    ("run-st-1", "翠湖小区 1 号楼大堂 · Cuihu Block 1 lobby", "徐汇区翠湖路 1 号", 31.19, 121.44),
    ("run-st-2", "滨江花园南门 · Binjiang Garden gate", "浦东新区滨江路 88 号", 31.23, 121.50),
)


def lockers(name: str) -> list[tuple[str, str]]:
    """This instance's two lockers (id, station): `name` keeps two runs on one broker apart."""
    return [(f"{name}-locker-1", STATIONS[0][0]), (f"{name}-locker-2", STATIONS[1][0])]


OPS_LOGIN = "ops.demo"
STAFF_LOGIN = "staff.demo"
SHOPPER_PHONES = ("13800138001", "13800138002")
Shop = tuple[Merchant, Product, Sku]


@dataclass
class Loaded:
    """What the printout names: ids of the demo's offers and the sign-ins."""

    campaigns: dict[str, str] = field(default_factory=dict)  # kind → id
    flash_live: str = ""
    flash_soon: str = ""
    flash_soon_at: datetime | None = None
    lockers: list[str] = field(default_factory=list)
    ops_password: str = ""
    staff_password: str = ""
    trace_url: str = ""


@dataclass(frozen=True)
class _Item:
    licence: str
    merchant: str
    product: str
    description: str
    zone: str
    sku: str
    price_cents: int
    colour: tuple[int, int, int]
    gtin: str | None = None


ITEMS = {
    "berries": _Item("01", "大理蓝莓农场 Dali Berry Farm", "蓝莓 Blueberries 500 g",
                     "云南大理高原蓝莓，当天采摘冷链直达。Picked in Dali, chilled all the way.",
                     "chilled", "500 g", 3000, (62, 74, 160)),
    "rice": _Item("02", "五常稻香合作社 Wuchang Rice Co-op", "五常大米 Wuchang rice 5 kg",
                  "黑龙江五常稻花香，新米。This year's Daohuaxiang rice.", "ambient", "5 kg",
                  8900, (231, 222, 196)),
    "eggs": _Item("03", "山林散养鸡场 Hill Farm Eggs", "散养土鸡蛋 Free-range eggs ×30",
                  "林下散养，每日新鲜。Free-range, laid this week.", "chilled", "30 eggs", 4500,
                  (214, 160, 92)),
    "cherries": _Item("04", "烟台樱桃园 Yantai Cherry Orchard", "大樱桃 Cherries 1 kg",
                      "烟台美早大樱桃。Meizao cherries from Yantai.", "chilled", "1 kg", 12900,
                      (150, 20, 40)),
}  # fmt: skip


def png(colour: tuple[int, int, int], width: int = 320, height: int = 240) -> bytes:
    """A plain product photo stand-in: a coloured PNG with a lighter band (no image library)."""
    light = tuple(min(255, c + 60) for c in colour)
    rows = b"".join(
        b"\x00" + bytes(light if height // 3 <= y < height // 2 else colour) * width
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))  # fmt: skip


def _product(session: Session, settings: Settings, item: _Item) -> Shop:
    from tuanbox.audit.services import Actor
    from tuanbox.catalog import media

    licence = LICENCE_PREFIX + item.licence
    merchant = session.scalar(select(Merchant).where(Merchant.licence_number == licence))
    if merchant is None:
        merchant = Merchant(name=item.merchant, licence_number=licence, verified=True)
        session.add(merchant)
        session.flush()
    product = session.scalar(select(Product).where(Product.merchant_id == merchant.id))
    if product is None:
        product = Product(merchant_id=merchant.id, name=item.product, description=item.description,
                          zone=item.zone, size_class="S", gtin=item.gtin)  # fmt: skip
        session.add(product)
        session.flush()
    sku = session.scalar(select(Sku).where(Sku.product_id == product.id))
    if sku is None:
        sku = Sku(product_id=product.id, name=item.sku, price_cents=item.price_cents,
                  stock_on_hand=500)  # fmt: skip
        session.add(sku)
        session.flush()
    has_image = session.scalar(select(ProductImage.id).where(ProductImage.product_id == product.id))
    if has_image is None:
        actor = Actor(id=RUN_ACTOR, role="admin")
        media.store_image(session, actor, settings.media_dir, product.id, png(item.colour))
    return merchant, product, sku


def _staff(session: Session, role: str, login: str, merchant_id: str | None) -> str:
    """The demo account of this role with a new random password (printed by `tuanbox run`)."""
    password = secrets.token_urlsafe(9)
    user = session.scalar(select(User).where(User.login == login))
    if user is None:
        user = User(role=role, login=login, merchant_id=merchant_id)
        session.add(user)
    user.password_hash = hash_password(password)
    session.flush()
    return password


def _places(session: Session, settings: Settings, loaded: Loaded, name: str) -> None:
    from tuanbox.fulfilment.provisioning import provision_locker
    from tuanbox.lockers.services import create_station, standard_layout

    for sid, title, address, lat, lon in STATIONS:
        if session.get(Station, sid) is None:
            create_station(session, id=sid, name=title, address=address, lat=lat, lon=lon,
                           opening_notes="24h")  # fmt: skip
    for locker_id, station_id in lockers(name):
        if session.get(Locker, locker_id) is None:
            provision_locker(session, settings, locker_id=locker_id, station_id=station_id,
                             layout=standard_layout())  # fmt: skip
        loaded.lockers.append(locker_id)


def _shoppers(session: Session, n: int) -> list[str]:
    users = [User(role="shopper") for _ in range(n)]
    session.add_all(users)
    session.flush()
    return [u.id for u in users]


def _open_offers(session: Session, now: datetime) -> bool:
    """Whether the demo's offers from an earlier run are still open."""
    mine = select(Campaign.id).where(Campaign.created_by == RUN_ACTOR, Campaign.ends_at > now)
    return session.scalar(mine) is not None


def load(factory: sessionmaker[Session], settings: Settings, name: str = "run") -> Loaded:
    """Load (or refresh) the demo catalogue; the trace step needs the dev chain (anvil)."""
    from tuanbox.trace import demo as trace_demo

    loaded = Loaded()
    # The lot with its provenance: the trace demo's batch, recorded and anchored on chain.
    trace_demo.run(settings)
    loaded.trace_url = f"/01/{trace_demo.DEMO_GTIN}/10/{trace_demo.DEMO_LOT}"
    with factory() as session:
        _places(session, settings, loaded, name)
        shops = {k: _product(session, settings, item) for k, item in ITEMS.items()}
        peaches = _peaches(session, settings)
        loaded.ops_password = _staff(session, "ops", OPS_LOGIN, None)
        loaded.staff_password = _staff(session, "merchant_staff", STAFF_LOGIN,
                                       shops["berries"][0].id)  # fmt: skip
        session.commit()
        now = utcnow()
        if not _open_offers(session, now):
            _offers(session, settings, shops, peaches, now)
        _find_offers(session, loaded, now)
    return loaded


def _peaches(session: Session, settings: Settings) -> Shop:
    """The trace demo's product (its lot has the anchored journey) with a SKU and a photo."""
    from tuanbox.trace.demo import DEMO_GTIN

    product = session.scalar(select(Product).where(Product.gtin == DEMO_GTIN))
    if product is None:
        raise RuntimeError("the trace demo did not create its product")
    merchant = session.get(Merchant, product.merchant_id)
    assert merchant is not None
    sku = session.scalar(select(Sku).where(Sku.product_id == product.id))
    if sku is None:
        sku = Sku(product_id=product.id, name="2 kg", price_cents=9800, stock_on_hand=200)
        session.add(sku)
        session.flush()
    if session.scalar(select(ProductImage.id).where(ProductImage.product_id == product.id)) is None:
        from tuanbox.audit.services import Actor
        from tuanbox.catalog import media

        media.store_image(session, Actor(id=RUN_ACTOR, role="admin"), settings.media_dir,
                          product.id, png((240, 170, 160)))  # fmt: skip
    return merchant, product, sku


def _pay(session: Session, settings: Settings, order_id: str) -> None:
    """Pay like a shopper: SimPay checkout, the hosted page's charge, its signed webhook."""
    from tuanbox.orders.models import Order
    from tuanbox.payments.services import handle_event, start_checkout
    from tuanbox.payments.simpay import SimPay

    sim = SimPay(settings)
    order = session.get(Order, order_id)
    assert order is not None
    intent = start_checkout(session, order, sim)
    session.commit()  # SimPay books the charge on its own connection, as a gateway would
    body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
    handle_event(session, sim.verify_webhook(headers, body))
    session.commit()


def _group(
    session: Session, settings: Settings, campaign_id: str, *, joined: int, paid: int, now: datetime
) -> None:
    """A group under way: `joined` shoppers, the first `paid` of them paid."""
    from tuanbox.groupbuy import services

    users = _shoppers(session, joined)
    station = STATIONS[0][0]
    first = services.open_group(session, campaign_id=campaign_id, user_id=users[0],
                                station_id=station, now=now)  # fmt: skip
    orders = [first.order_id] + [
        services.join_group(session, group_id=first.group.id, user_id=u, station_id=station,
                            now=now).order_id
        for u in users[1:]
    ]  # fmt: skip
    session.commit()
    for order_id in orders[:paid]:
        _pay(session, settings, order_id)


def _campaign(
    session: Session,
    shop: Shop,
    title: str,
    tiers: tuple[tuple[int, int], ...],
    now: datetime,
    **spec: Any,
) -> str:
    from tuanbox.groupbuy import services
    from tuanbox.groupbuy.domain import CampaignKind, Tier
    from tuanbox.groupbuy.spec import CampaignSpec

    merchant, _product, sku = shop
    values: dict[str, Any] = {
        "sku_id": sku.id,
        "title": title,
        "kind": CampaignKind.FIXED if len(tiers) == 1 else CampaignKind.TIERED,
        "tiers": tuple(Tier(n, p) for n, p in tiers),
        "max_size": max(n for n, _ in tiers),
        "starts_at": now - timedelta(minutes=1),
        "ends_at": now + timedelta(days=3),
        "per_user_limit": 2,
        **spec,
    }
    campaign = services.create_campaign(
        session, merchant_id=merchant.id, actor_id=RUN_ACTOR, spec=CampaignSpec(**values)
    )
    session.commit()
    return campaign.id


def _offers(
    session: Session,
    settings: Settings,
    shops: dict[str, Shop],
    peaches: Shop,
    now: datetime,
) -> None:
    from tuanbox.trace.demo import DEMO_LOT

    tiered = _campaign(session, shops["berries"], "蓝莓阶梯团 · Blueberries, the more the cheaper",
                       ((3, 2700), (5, 2400), (10, 2100)), now)  # fmt: skip
    fixed = _campaign(session, shops["rice"], "五常大米 5 人团 · Wuchang rice, group of 5",
                      ((5, 6900),), now)  # fmt: skip
    _campaign(session, shops["eggs"], "土鸡蛋 2 人团 · Free-range eggs for two", ((2, 3500),), now,
              ends_at=now + timedelta(days=1))  # fmt: skip
    _campaign(session, peaches, "奉化水蜜桃预售 · Honey peaches, pre-sale",
              ((10, 7800), (20, 6800)), now, presale=True, lot_code=DEMO_LOT,
              max_size=20, ends_at=now + timedelta(days=5))  # fmt: skip
    _group(session, settings, tiered, joined=2, paid=2, now=now)
    _group(session, settings, tiered, joined=1, paid=0, now=now)
    _group(session, settings, fixed, joined=3, paid=3, now=now)


def _flash(
    session: Session,
    settings: Settings,
    shop: Shop,
    title: str,
    price_cents: int,
    stock: int,
    starts_at: datetime,
    ends_at: datetime,
) -> str:
    from tuanbox.flashsale import services as flash
    from tuanbox.flashsale.counters import FlashCounters

    merchant, _product, sku = shop
    sale = flash.create_sale(
        session, merchant_id=merchant.id, actor_id=RUN_ACTOR,
        spec=flash.SaleSpec(sku_id=sku.id, title=title, price_cents=price_cents, stock_cap=stock,
                            per_user_limit=1, starts_at=starts_at, ends_at=ends_at),
    )  # fmt: skip
    session.commit()
    counters = FlashCounters.from_url(settings.redis_url)
    try:
        flash.load_counters(session, counters, sale)
    finally:
        counters.close()
    return sale.id


def _demo_sales(session: Session) -> list[FlashSale]:
    return list(
        session.scalars(
            select(FlashSale)
            .where(FlashSale.created_by == RUN_ACTOR, FlashSale.closed_at.is_(None))
            .order_by(FlashSale.starts_at)
        )
    )


def _find_offers(session: Session, loaded: Loaded, now: datetime) -> None:
    """The open demo offers, and fresh flash sales when none runs or none is about to."""
    from tuanbox.groupbuy.services import as_utc

    for campaign in session.scalars(
        select(Campaign).where(Campaign.created_by == RUN_ACTOR, Campaign.ends_at > now)
    ):
        loaded.campaigns.setdefault("presale" if campaign.presale else campaign.kind, campaign.id)
    sales = _demo_sales(session)
    live = [s for s in sales if as_utc(s.starts_at) <= now < as_utc(s.ends_at)]
    soon = [s for s in sales if as_utc(s.starts_at) > now]
    settings = _settings_of(session)
    shops = {k: _product(session, settings, item) for k, item in ITEMS.items()}
    loaded.flash_live = live[0].id if live else _flash(
        session, settings, shops["cherries"], "大樱桃限时秒杀 · Cherries flash sale", 2990, 20,
        now - timedelta(minutes=1), now + timedelta(hours=2),
    )  # fmt: skip
    if soon:
        loaded.flash_soon, loaded.flash_soon_at = soon[0].id, as_utc(soon[0].starts_at)
    else:
        at = now + FLASH_STARTS_IN
        loaded.flash_soon = _flash(session, settings, shops["eggs"],
                                   "鸡蛋 9.9 元秒杀 · Eggs for ¥9.90", 990, 10, at,
                                   at + timedelta(hours=1))  # fmt: skip
        loaded.flash_soon_at = at


def _settings_of(session: Session) -> Settings:
    from tuanbox.db.engine import settings_of

    return settings_of(session)
