"""A small shop for the recommendation pages: a campaign and what its buyers also bought."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import make_shop, make_shoppers, tiered_spec
from tuanbox.catalog.models import Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.groupbuy.models import Campaign
from tuanbox.groupbuy.services import create_campaign
from tuanbox.lockers.services import create_station
from tuanbox.recommend import services


@dataclass
class RecShop:
    station: str
    main: str  # the campaign page looked at (product P0)
    together: str  # P1: bought by P0's buyers, on sale
    ended: str  # P2: bought by P0's buyers even more, its campaign has ended
    paused: str  # P3: bought by P0's buyers too, its campaign is paused
    popular: str  # P4: no pair with P0, popular at the station
    buyer: str  # bought P0 (and so is shown P1 first, never P0)
    newcomer: str  # bought nothing: popularity alone


def make_rec_shop(session: Session) -> RecShop:
    tag = uuid.uuid4().hex[:6]
    station = create_station(session, id=f"st-r-{tag}", name="Lobby R", address="9 R Road",
                             lat=31.2, lon=121.4)  # fmt: skip
    shop = make_shop(session)
    campaigns: list[Campaign] = []
    products: list[str] = []
    for i, name in enumerate(["Peaches", "Cream", "Honey", "Jam", "Milk"]):
        product = Product(merchant_id=shop.merchant_id, name=f"{name} {tag}", zone="chilled")
        session.add(product)
        session.flush()
        sku = Sku(product_id=product.id, name="box", price_cents=1000 + i, stock_on_hand=100)
        session.add(sku)
        session.flush()
        spec = tiered_spec(sku.id, title=f"{name} group {tag}")
        campaigns.append(create_campaign(session, merchant_id=shop.merchant_id,
                                         actor_id=shop.staff_id, spec=spec))  # fmt: skip
        products.append(product.id)
    now = utcnow()
    campaigns[2].ends_at = now - timedelta(minutes=1)
    campaigns[3].paused_at = now - timedelta(minutes=1)
    p0, p1, p2, p3, p4 = products
    shoppers = make_shoppers(session, 8)
    baskets = {
        0: [p0, p1, p2, p3], 1: [p0, p1, p2, p3], 2: [p0, p1, p2, p3], 3: [p0, p2],
        4: [p4, p4], 5: [p4, p4], 6: [p4, p4],
    }  # fmt: skip
    n = 0
    for who, items in baskets.items():
        for product in items:
            n += 1
            services.record(session, order_id=f"rec-{tag}-{n}", user_id=shoppers[who],
                            product_id=product, station_id=station.id, at=now)  # fmt: skip
    session.commit()
    return RecShop(station.id, campaigns[0].id, campaigns[1].id, campaigns[2].id,
                   campaigns[3].id, campaigns[4].id, shoppers[3], shoppers[7])  # fmt: skip
