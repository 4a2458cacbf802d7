"""Test data for pre-sale and group paths: a campaign whose group succeeded, orders paid."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.platform.groupbuy.factories import fixed_spec, make_shop, make_shoppers, pay
from tuanbox.catalog.models import Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.groupbuy import services
from tuanbox.groupbuy.closing import close_group
from tuanbox.groupbuy.models import Campaign
from tuanbox.settings import Settings

GTIN = "09506000134352"
LOT = "PS2026-12"


@dataclass(frozen=True)
class Closed:
    campaign_id: str
    merchant_id: str
    staff_id: str
    order_ids: list[str]


def succeeded_group(
    session: Session,
    settings: Settings,
    station_id: str,
    *,
    presale: bool,
    members: int = 2,
    lot_code: str | None = LOT,
    gtin: str | None = GTIN,
) -> Closed:
    """A campaign at `station_id` whose one group filled, was paid via SimPay and closed."""
    shop = make_shop(session)
    sku = session.get(Sku, shop.sku_id)
    assert sku is not None
    product = session.get(Product, sku.product_id)
    assert product is not None
    product.gtin, product.size_class = gtin, "S"
    campaign = services.create_campaign(
        session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(
            shop.sku_id,
            members=members,
            presale=presale,
            lot_code=lot_code,
            station_ids=(station_id,),
        ),
    )
    now = utcnow()
    users = make_shoppers(session, members)
    first = services.open_group(
        session, campaign_id=campaign.id, user_id=users[0], station_id=station_id, now=now
    )
    joined = [first] + [
        services.join_group(
            session, group_id=first.group.id, user_id=u, station_id=station_id, now=now
        )
        for u in users[1:]
    ]
    for j in joined:
        pay(session, settings, j.order_id)
    group = first.group
    session.refresh(group)
    close_group(session, group, now + timedelta(seconds=1))
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(ends_at=now - timedelta(seconds=1))
    )
    session.flush()
    return Closed(campaign.id, shop.merchant_id, shop.staff_id, [j.order_id for j in joined])
