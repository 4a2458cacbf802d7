"""Stock set aside for a group-buy campaign: the campaign's pool and each group's chunk.

A capped campaign (`stock_cap`) reserves its cap on the SKU once, when it is created. A
group draws a chunk of units from the campaign's pool when it opens (one per seat, the
leader's quantity included) and more only when a join needs them, so a join updates its
own group row and nothing else: joins of one campaign no longer queue on one row lock.

Accounting, for each SKU (the concurrency tests check it):

    skus.stock_reserved = Σ stock_remaining of its capped campaigns not yet closed
                        + Σ (units_held − units_taken) of their groups
                        + Σ qty of orders holding stock (every kind)
                        + Σ remaining of its open flash sales

An order of a capped campaign takes its units over from its group (`stock_held`, the SKU is
not touched). When such an order lapses (cancelled, expired, refunded while holding stock),
`orders.transition` releases its units on the SKU and `units_back` takes them straight back
for where they came from: the group's chunk while the group is open, else the campaign's
pool while the campaign is running, else they stay on the SKU, on sale again. A closing
group gives its unused units back to the pool (`settle_group`); an ended campaign, once its
groups are closed, gives the rest of its pool back to the SKU (`close_ended_campaigns`).

Locks: a join holds its group row and, only when its group's chunk is short, then the
campaign row; opening a group holds the campaign row. Nobody holding the campaign row waits
for another row, and the jobs that need the SKU and the campaign take them with SKIP LOCKED.
Every lock here is `FOR NO KEY UPDATE` (what an UPDATE takes): a plain `FOR UPDATE` would
also block the foreign-key checks of rows inserted meanwhile (a joiner's quota row points at
the campaign, its order at the SKU, its member row at the group).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from tuanbox.catalog.errors import InsufficientStockError
from tuanbox.groupbuy.domain import GroupStatus
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.orders.domain import HOLDS_STOCK, RELEASES_STOCK

if TYPE_CHECKING:
    from tuanbox.orders.models import Order

log = logging.getLogger("tuanbox.groupbuy")


def set_aside(session: Session, campaign: Campaign, cap: int) -> None:
    """Reserve the campaign's whole cap on its SKU now (InsufficientStockError if short)."""
    from tuanbox.catalog.stock import reserve_stock

    reserve_stock(session, campaign.sku_id, cap)
    campaign.stock_cap = cap
    campaign.stock_remaining = cap


def draw(session: Session, campaign_id: str, *, want: int, need: int) -> int:
    """Take up to `want` units (at least `need`) from a running pool; returns how many.

    The campaign row is locked first, so the guarded UPDATE below cannot miss on PostgreSQL;
    on SQLite (one writer at a time) the guard is what keeps the pool from going negative.
    """
    row = session.execute(
        select(Campaign.stock_remaining, Campaign.stock_closed_at)
        .where(Campaign.id == campaign_id)
        .with_for_update(key_share=True)
    ).one()
    remaining, closed_at = int(row[0] or 0), row[1]
    take = min(want, remaining)
    if closed_at is not None or take < need:
        raise InsufficientStockError(
            "this campaign has no stock left for another seat", qty=need, campaign_id=campaign_id
        )
    taken = session.execute(
        update(Campaign)
        .where(
            Campaign.id == campaign_id,
            Campaign.stock_closed_at.is_(None),
            Campaign.stock_remaining >= take,
        )
        .values(stock_remaining=Campaign.stock_remaining - take)
        .returning(Campaign.id),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if taken is None:
        raise InsufficientStockError(
            "this campaign has no stock left for another seat", qty=need, campaign_id=campaign_id
        )
    return take


def top_up(session: Session, group: Group, qty: int) -> bool:
    """Give an open group with a free seat enough units for a join of `qty`; False when the
    group has no seat (full, closed or past its deadline) and the join must be refused."""
    row = session.execute(
        select(
            Group.status,
            Group.seats_taken,
            Group.max_size,
            Group.units_held,
            Group.units_taken,
            Group.campaign_id,
        )
        .where(Group.id == group.id)
        .with_for_update(key_share=True)
    ).one()
    status, seats, max_size, held, taken, campaign_id = row
    if status != GroupStatus.OPEN.value or seats >= max_size:
        return False
    short = int(taken) + qty - int(held)
    if short <= 0:
        return True  # another join's top-up already covered us
    got = draw(session, campaign_id, want=short, need=short)
    session.execute(
        update(Group)
        .where(Group.id == group.id)
        .values(units_held=Group.units_held + got)
        .execution_options(synchronize_session=False)
    )
    return True


def units_back(session: Session, order: Order, from_status: str, campaign: Campaign) -> None:
    """Orders hook helper: a capped campaign's order just released its units on the SKU;
    take them back for its group (open) or its campaign's pool (running), if either still
    wants them. Net zero on the SKU then; otherwise they stay released, on sale again."""
    from tuanbox.catalog.models import Sku
    from tuanbox.catalog.stock import reserve_stock

    if from_status not in HOLDS_STOCK or order.status not in RELEASES_STOCK:
        return  # this move released nothing (the units were already gone or handed over)
    sku = session.get(Sku, order.sku_id)
    if sku is None or not sku.active:
        return  # a withdrawn SKU sells nothing more: its units stay released
    qty = order.qty
    back = session.execute(
        update(Group)
        .where(
            Group.id == order.group_id,
            Group.status == GroupStatus.OPEN.value,
            Group.units_taken >= qty,
        )
        .values(units_taken=Group.units_taken - qty)
        .returning(Group.id),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if back is None:
        back = session.execute(
            update(Campaign)
            .where(
                Campaign.id == campaign.id,
                Campaign.stock_closed_at.is_(None),
                Campaign.stock_remaining + qty <= Campaign.stock_cap,
            )
            .values(stock_remaining=Campaign.stock_remaining + qty)
            .returning(Campaign.id),
            execution_options={"synchronize_session": False},
        ).one_or_none()
    if back is not None:
        reserve_stock(session, order.sku_id, qty)


def settle_group(session: Session, group: Group) -> None:
    """A group closes: its unused units go back to the pool (or to the SKU, if the campaign
    already gave its pool back), and it holds exactly what its members took."""
    from tuanbox.catalog.stock import release_stock

    session.flush()
    free = int(group.units_held) - int(group.units_taken)
    if free <= 0:
        return
    session.execute(
        update(Group)
        .where(Group.id == group.id)
        .values(units_held=Group.units_taken)
        .execution_options(synchronize_session=False)
    )
    session.expire(group, ["units_held"])
    pooled = session.execute(
        update(Campaign)
        .where(
            Campaign.id == group.campaign_id,
            Campaign.stock_cap.is_not(None),
            Campaign.stock_closed_at.is_(None),
        )
        .values(stock_remaining=Campaign.stock_remaining + free)
        .returning(Campaign.id),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if pooled is None:
        campaign = session.get(Campaign, group.campaign_id)
        assert campaign is not None
        release_stock(session, campaign.sku_id, free)


def close_ended_campaigns(session: Session, *, now: datetime) -> list[str]:
    """Give back the pool of every capped campaign that has ended and has no group left open
    or filled (those still draw from it or give units back to it); returns their ids.

    The campaign and its SKU are taken with SKIP LOCKED: a busy one waits for the next run,
    and this job never waits while holding a row someone else wants.
    """
    from tuanbox.catalog.models import Sku
    from tuanbox.catalog.stock import release_stock

    live = exists().where(
        Group.campaign_id == Campaign.id,
        Group.status.in_((GroupStatus.OPEN.value, GroupStatus.FILLED.value)),
    )
    campaigns = session.scalars(
        select(Campaign)
        .where(
            Campaign.stock_cap.is_not(None),
            Campaign.stock_closed_at.is_(None),
            Campaign.ends_at <= now,
            ~live,
        )
        .with_for_update(skip_locked=True, key_share=True)
    ).all()
    closed: list[str] = []
    for campaign in campaigns:
        sku = session.scalars(
            select(Sku.id)
            .where(Sku.id == campaign.sku_id)
            .with_for_update(skip_locked=True, key_share=True)
        ).first()
        if sku is None:
            continue
        session.refresh(campaign)
        if campaign.stock_remaining:
            release_stock(session, campaign.sku_id, int(campaign.stock_remaining))
        campaign.stock_remaining = 0
        campaign.stock_closed_at = now
        closed.append(campaign.id)
    session.flush()
    if closed:
        log.info("campaign stock given back", extra={"campaigns": len(closed)})
    return closed
