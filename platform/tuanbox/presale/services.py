"""Pre-sale purchase orders: at campaign close, total confirmed demand per SKU and lot."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.errors import ConflictError
from tuanbox.groupbuy.domain import GroupStatus
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.groupbuy.services import as_utc, get_campaign

# Orders that count as demand: the group succeeded and the shopper has not backed out. A
# pre-sale order stays paid until its batch is received at the hub, then moves on.
DEMAND_STATUSES = ("paid", "confirmed", "allocated", "ready_for_pickup", "picked_up", "completed")


class NotPresaleError(ConflictError):
    code = "NOT_PRESALE"


class CampaignStillOpenError(ConflictError):
    code = "CAMPAIGN_NOT_CLOSED"


@dataclass(frozen=True)
class PurchaseLine:
    sku_id: str
    sku_name: str
    gtin: str | None
    lot_code: str | None
    qty: int
    orders: int
    groups: int


@dataclass(frozen=True)
class PurchaseOrder:
    campaign_id: str
    merchant_id: str
    title: str
    closed_at: datetime
    lines: list[PurchaseLine]

    @property
    def total_qty(self) -> int:
        return sum(line.qty for line in self.lines)


def purchase_order(session: Session, campaign_id: str, *, now: datetime) -> PurchaseOrder:
    """The supplier's order for a closed pre-sale campaign (409 while groups still run)."""
    from tuanbox.catalog.models import Product, Sku
    from tuanbox.orders.models import Order

    campaign: Campaign = get_campaign(session, campaign_id)
    if not campaign.presale:
        raise NotPresaleError("this campaign is not a pre-sale")
    running = session.scalar(
        select(func.count())
        .select_from(Group)
        .where(
            Group.campaign_id == campaign.id,
            Group.status.in_([GroupStatus.OPEN.value, GroupStatus.FILLED.value]),
        )
    )
    if as_utc(campaign.ends_at) > now or running:
        raise CampaignStillOpenError(
            "demand is final only after the campaign ended and every group closed",
            running_groups=int(running or 0),
        )
    rows = session.execute(
        select(
            Order.sku_id,
            func.sum(Order.qty),
            func.count(Order.id),
            func.count(func.distinct(Order.group_id)),
        )
        .join(Group, Group.id == Order.group_id)
        .where(
            Group.campaign_id == campaign.id,
            Group.status == GroupStatus.CONFIRMED.value,
            Order.status.in_(DEMAND_STATUSES),
        )
        .group_by(Order.sku_id)
        .order_by(Order.sku_id)
    ).all()
    lines = []
    for sku_id, qty, orders, groups in rows:
        sku = session.get(Sku, sku_id)
        product = session.get(Product, sku.product_id) if sku else None
        lines.append(
            PurchaseLine(
                sku_id=sku_id,
                sku_name=f"{product.name} / {sku.name}" if sku and product else sku_id,
                gtin=product.gtin if product else None,
                lot_code=campaign.lot_code,
                qty=int(qty),
                orders=int(orders),
                groups=int(groups),
            )
        )
    return PurchaseOrder(
        campaign.id, campaign.merchant_id, campaign.title, as_utc(campaign.ends_at), lines
    )


def to_csv(po: PurchaseOrder) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["campaign_id", "sku_id", "sku_name", "gtin", "lot_code", "qty", "orders", "groups"]
    )
    for line in po.lines:
        writer.writerow(
            [
                po.campaign_id,
                line.sku_id,
                line.sku_name,
                line.gtin or "",
                line.lot_code or "",
                line.qty,
                line.orders,
                line.groups,
            ]
        )
    return out.getvalue()
