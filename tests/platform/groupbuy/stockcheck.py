"""The stock accounting of capped campaigns, checked from the rows (`groupbuy.pool`'s sums)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.catalog.models import Sku
from tuanbox.groupbuy.models import Campaign, Group, Member
from tuanbox.orders.models import Order


def holding(session: Session, **where: str) -> int:
    """Units held by orders (stock_held) matching `where` (sku_id=… or group_id=…)."""
    query = select(func.coalesce(func.sum(Order.qty), 0)).where(Order.stock_held.is_(True))
    for name, value in where.items():
        query = query.where(getattr(Order, name) == value)
    return int(session.scalar(query) or 0)


def check_sku(session: Session, sku_id: str) -> dict[str, int]:
    """SKU reserved = open pools + free group chunks + orders holding stock; returns the parts."""
    session.expire_all()
    sku = session.get(Sku, sku_id)
    assert sku is not None
    pools = int(
        session.scalar(
            select(func.coalesce(func.sum(Campaign.stock_remaining), 0)).where(
                Campaign.sku_id == sku_id,
                Campaign.stock_cap.is_not(None),
                Campaign.stock_closed_at.is_(None),
            )
        )
        or 0
    )
    chunks = int(
        session.scalar(
            select(func.coalesce(func.sum(Group.units_held - Group.units_taken), 0))
            .join(Campaign, Campaign.id == Group.campaign_id)
            .where(Campaign.sku_id == sku_id, Campaign.stock_cap.is_not(None))
        )
        or 0
    )
    orders = holding(session, sku_id=sku_id)
    parts = {"reserved": sku.stock_reserved, "pools": pools, "chunks": chunks, "orders": orders}
    assert sku.stock_reserved == pools + chunks + orders, parts
    assert 0 <= sku.stock_reserved <= sku.stock_on_hand, parts
    return parts


def check_campaign(session: Session, campaign_id: str) -> None:
    """A running capped campaign's units are all somewhere: pool, group chunks or orders; and
    no group is over its size, every seat a member, every open group's units its members'."""
    session.expire_all()
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None and campaign.stock_cap is not None
    groups = list(session.scalars(select(Group).where(Group.campaign_id == campaign_id)))
    orders = 0
    for group in groups:
        members = list(session.scalars(select(Member).where(Member.group_id == group.id)))
        assert group.seats_taken <= group.max_size, group.id
        assert 0 <= group.units_taken <= group.units_held, group.id
        held_here = holding(session, group_id=group.id)
        orders += held_here
        if group.status == "open":
            assert group.seats_taken == len(members), group.id
            assert group.units_taken == held_here, group.id
        else:
            assert group.units_held == group.units_taken, group.id  # settled at close
    if campaign.stock_closed_at is None:
        free = sum(g.units_held - g.units_taken for g in groups)
        assert campaign.stock_cap == campaign.stock_remaining + free + orders, (
            campaign.stock_cap,
            campaign.stock_remaining,
            free,
            orders,
        )
