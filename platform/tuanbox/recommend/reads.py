"""What the pages show: campaigns open now (at the shopper's station) ranked by the scores.
Only live campaigns are candidates, so an item not on sale is never recommended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tuanbox.recommend import domain, services
from tuanbox.settings import Settings
from tuanbox.shop.listing import CampaignView, live_campaigns


def _on_sale(db: Session, now: datetime, station_id: str | None) -> dict[str, CampaignView]:
    """One live campaign per product (the listing's order: the group closest to filling)."""
    by_product: dict[str, CampaignView] = {}
    for view in live_campaigns(db, now, station_id):
        by_product.setdefault(view.product_id, view)
    return by_product


def bought_with(
    db: Session, settings: Settings, product_id: str, station_id: str | None, now: datetime
) -> list[CampaignView]:
    """ "Bought together" for a campaign's product: its top co-occurring products on sale
    here by cosine; the station's popular ones fill the rest (never the product itself)."""
    on_sale = _on_sale(db, now, station_id)
    on_sale.pop(product_id, None)
    if not on_sale:
        return []
    k = settings.recommend_max_items
    pairs = services.neighbours(db, [product_id])
    buyers = services.buyers_of(db, [product_id, *pairs.get(product_id, {})])
    ranked = [
        p
        for p, _ in domain.bought_together(
            product_id,
            pairs,
            buyers,
            min_support=settings.recommend_min_support,
            allowed=on_sale,
            k=k,
        )
    ]
    if len(ranked) < k:
        pop = services.station_popularity(db, station_id, now, settings.recommend_popularity_days)
        ranked += [
            p for p, _ in domain.popular({p: pop.get(p, 0.0) for p in on_sale}, k=k, exclude=ranked)
        ][: k - len(ranked)]
    return [on_sale[p] for p in ranked]


def for_shopper(
    db: Session, settings: Settings, user_id: str, station_id: str | None, now: datetime
) -> list[CampaignView]:
    """ "Guess you like": co-occurrence over the shopper's kept items blended with the
    station's popularity, items they own left out; popularity alone for a new shopper."""
    on_sale = _on_sale(db, now, station_id)
    if not on_sale:
        return []
    owned = services.history(db, user_id)
    pairs = services.neighbours(db, owned)
    buyers = services.buyers_of(db, {*owned, *(b for n in pairs.values() for b in n)})
    pop = services.station_popularity(db, station_id, now, settings.recommend_popularity_days)
    ranked = domain.for_shopper(
        owned,
        pairs,
        buyers,
        pop,
        min_support=settings.recommend_min_support,
        popularity_weight=settings.recommend_popularity_weight,
        allowed=on_sale,
        k=settings.recommend_max_items,
    )
    return [on_sale[p] for p, _ in ranked]
