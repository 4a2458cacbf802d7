"""What the home and campaign pages show, read from the database as plain view objects.

Nothing here is per shopper: the page cache stores what these build (per station and
language), so a view never carries a name, an order or a token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.catalog.models import Merchant, Product, ProductImage, Sku
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.domain import Progress
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.groupbuy.services import as_utc, group_progress
from tuanbox.lockers.models import Station
from tuanbox.membership.pricing import member_prices_of

# How far ahead the flash-sale zone announces a sale that has not started yet.
UPCOMING_WINDOW = timedelta(hours=24)
MAX_CARDS = 40
MAX_GROUPS = 20


@dataclass(frozen=True)
class MerchantView:
    id: str
    name: str
    licence_number: str
    verified: bool


@dataclass(frozen=True)
class GroupView:
    id: str
    progress: Progress
    deadline_at: datetime


@dataclass(frozen=True)
class CampaignView:
    id: str
    title: str
    kind: str  # fixed | tiered | presale
    product_id: str
    product_name: str
    description: str
    list_price_cents: int
    price_cents: int  # the best tier's
    tiers: list[list[int]]
    max_size: int
    starts_at: datetime
    ends_at: datetime
    per_user_limit: int
    merchant: MerchantView
    images: list[str]
    station_ids: list[str]
    zone: str
    gtin: str | None
    lot_code: str | None
    groups: list[GroupView] = field(default_factory=list)
    # The SKU's member price where below the joining price (`tuanbox.membership.pricing`).
    member_price_cents: int | None = None

    @property
    def best_group(self) -> GroupView | None:
        return self.groups[0] if self.groups else None


@dataclass(frozen=True)
class SaleView:
    id: str
    title: str
    product_name: str
    description: str
    merchant: MerchantView
    price_cents: int
    list_price_cents: int
    per_user_limit: int
    stock_cap: int
    remaining: int
    starts_at: datetime
    ends_at: datetime
    live: bool
    images: list[str]
    # The SKU's member price where below the sale's (rare: flash prices are the lowest).
    member_price_cents: int | None = None


@dataclass(frozen=True)
class StationView:
    id: str
    name: str
    address: str
    opening_notes: str


def _images(session: Session, product_ids: set[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if not product_ids:
        return found
    rows = session.scalars(
        select(ProductImage)
        .where(ProductImage.product_id.in_(product_ids))
        .order_by(ProductImage.product_id, ProductImage.position)
    )
    for image in rows:
        found.setdefault(image.product_id, []).append(f"/media/{image.filename}")
    return found


def _offered_at(campaign: Campaign, station_id: str | None) -> bool:
    """Campaigns listing no station are offered everywhere (station_ids is JSON: matched
    here, not in SQL, so PostgreSQL and SQLite agree)."""
    return not campaign.station_ids or station_id is None or station_id in campaign.station_ids


def _open_groups(
    session: Session, campaigns: dict[str, Campaign], now: datetime
) -> dict[str, list[GroupView]]:
    groups: dict[str, list[GroupView]] = {}
    if not campaigns:
        return groups
    rows = session.scalars(
        select(Group)
        .where(Group.campaign_id.in_(campaigns), Group.status == "open", Group.deadline_at > now)
        .order_by(Group.seats_taken.desc(), Group.deadline_at)
    )
    for group in rows:
        listed = groups.setdefault(group.campaign_id, [])
        if len(listed) < MAX_GROUPS:
            progress = group_progress(campaigns[group.campaign_id], group, now)
            listed.append(GroupView(group.id, progress, as_utc(group.deadline_at)))
    return groups


def _campaign_views(
    session: Session, campaigns: list[Campaign], now: datetime
) -> list[CampaignView]:
    if not campaigns:
        return []
    skus = {
        s.id: s
        for s in session.scalars(select(Sku).where(Sku.id.in_({c.sku_id for c in campaigns})))
    }
    products = {
        p.id: p
        for p in session.scalars(
            select(Product).where(Product.id.in_({s.product_id for s in skus.values()}))
        )
    }
    merchants = {
        m.id: m
        for m in session.scalars(
            select(Merchant).where(Merchant.id.in_({c.merchant_id for c in campaigns}))
        )
    }
    images = _images(session, set(products))
    groups = _open_groups(session, {c.id: c for c in campaigns}, now)
    member_prices = member_prices_of(session, sorted(skus))
    views = []
    for c in campaigns:
        sku = skus[c.sku_id]
        product = products[sku.product_id]
        m = merchants[c.merchant_id]
        views.append(
            CampaignView(
                id=c.id,
                title=c.title,
                kind="presale" if c.presale else c.kind,
                product_id=product.id,
                product_name=product.name,
                description=product.description,
                list_price_cents=sku.price_cents,
                price_cents=min(int(price) for _, price in c.tiers),
                tiers=[[int(n), int(p)] for n, p in c.tiers],
                max_size=c.max_size,
                starts_at=as_utc(c.starts_at),
                ends_at=as_utc(c.ends_at),
                per_user_limit=c.per_user_limit,
                merchant=MerchantView(m.id, m.name, m.licence_number, m.verified),
                images=images.get(product.id, []),
                station_ids=list(c.station_ids or []),
                zone=product.zone,
                gtin=product.gtin,
                lot_code=c.lot_code,
                groups=groups.get(c.id, []),
                member_price_cents=_below(
                    member_prices.get(sku.id), max(int(price) for _, price in c.tiers)
                ),
            )
        )
    return views


def live_campaigns(session: Session, now: datetime, station_id: str | None) -> list[CampaignView]:
    """Campaigns open now at this station, the ones with groups closest to filling first."""
    rows = session.scalars(
        select(Campaign)
        .where(Campaign.starts_at <= now, Campaign.ends_at > now, Campaign.paused_at.is_(None))
        .order_by(Campaign.ends_at)
        .limit(MAX_CARDS * 4)
    )
    offered = [c for c in rows if _offered_at(c, station_id)][:MAX_CARDS]
    views = _campaign_views(session, offered, now)
    views.sort(key=lambda v: (v.best_group is None,
                              v.best_group.progress.needed if v.best_group else 0))  # fmt: skip
    return views


def campaign(session: Session, campaign_id: str, now: datetime) -> CampaignView | None:
    row = session.get(Campaign, campaign_id)
    return _campaign_views(session, [row], now)[0] if row is not None else None


def flash_sales(session: Session, now: datetime) -> list[SaleView]:
    """Sales running now, then those starting within UPCOMING_WINDOW, soonest first."""
    rows = list(
        session.scalars(
            select(FlashSale)
            .where(
                FlashSale.closed_at.is_(None),
                FlashSale.ends_at > now,
                FlashSale.starts_at <= now + UPCOMING_WINDOW,
            )
            .order_by(FlashSale.starts_at)
            .limit(MAX_CARDS)
        )
    )
    return _sale_views(session, rows, now)


def flash_sale(session: Session, sale_id: str, now: datetime) -> SaleView | None:
    row = session.get(FlashSale, sale_id)
    return _sale_views(session, [row], now)[0] if row is not None else None


def _sale_views(session: Session, rows: list[FlashSale], now: datetime) -> list[SaleView]:
    if not rows:
        return []
    skus = {
        s.id: s for s in session.scalars(select(Sku).where(Sku.id.in_({r.sku_id for r in rows})))
    }
    products = {
        p.id: p
        for p in session.scalars(
            select(Product).where(Product.id.in_({s.product_id for s in skus.values()}))
        )
    }
    merchants = {
        m.id: m
        for m in session.scalars(
            select(Merchant).where(Merchant.id.in_({r.merchant_id for r in rows}))
        )
    }
    images = _images(session, set(products))
    member_prices = member_prices_of(session, sorted(skus))
    views = []
    for r in rows:
        sku = skus[r.sku_id]
        m = merchants[r.merchant_id]
        views.append(
            SaleView(
                id=r.id,
                title=r.title,
                product_name=products[sku.product_id].name,
                description=products[sku.product_id].description,
                merchant=MerchantView(m.id, m.name, m.licence_number, m.verified),
                price_cents=r.price_cents,
                list_price_cents=sku.price_cents,
                per_user_limit=r.per_user_limit,
                stock_cap=r.stock_cap,
                remaining=r.remaining,
                starts_at=as_utc(r.starts_at),
                ends_at=as_utc(r.ends_at),
                live=as_utc(r.starts_at) <= now,
                images=images.get(sku.product_id, []),
                member_price_cents=_below(member_prices.get(sku.id), r.price_cents),
            )
        )
    return views


def _below(member_cents: int | None, offer_cents: int) -> int | None:
    return member_cents if member_cents is not None and member_cents < offer_cents else None


@dataclass(frozen=True)
class ReviewView:
    rating: int  # 1-5
    text: str
    at: datetime
    reply: str | None = None  # the merchant's, from the console's reviews queue


@dataclass(frozen=True)
class Reviews:
    items: list[ReviewView]
    count: int
    average: float | None


def reviews(session: Session, product_id: str) -> Reviews:
    """Shoppers' reviews of this product, newest first, with the average rating (written
    from the order pages after pickup: tuanbox.reviews)."""
    from tuanbox.reviews.services import for_product

    found = for_product(session, product_id)
    items = [
        ReviewView(r.rating, r.text, as_utc(r.created_at), r.merchant_reply) for r in found.items
    ]
    return Reviews(items=items, count=found.count, average=found.average)


def stations(session: Session) -> list[StationView]:
    rows = session.scalars(select(Station).order_by(Station.name).limit(200))
    return [StationView(s.id, s.name, s.address, s.opening_notes) for s in rows]


def station(session: Session, station_id: str | None) -> StationView | None:
    if not station_id:
        return None
    s = session.get(Station, station_id)
    return StationView(s.id, s.name, s.address, s.opening_notes) if s is not None else None


def next_change(
    now: datetime, campaigns: list[CampaignView], sales: list[SaleView]
) -> datetime | None:
    """The soonest instant the page's content changes by the clock alone (a sale starts or
    ends, a campaign or group closes): a cached copy must not outlive it."""
    moments = [c.ends_at for c in campaigns]
    moments += [g.deadline_at for c in campaigns for g in c.groups]
    moments += [s.starts_at if not s.live else s.ends_at for s in sales]
    later = [m for m in moments if m > now]
    return min(later) if later else None
