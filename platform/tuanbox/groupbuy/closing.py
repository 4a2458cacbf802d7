"""Closing groups at their deadline (or when filled), and reacting to members' order changes.

Closing is idempotent: due groups are picked with `FOR UPDATE SKIP LOCKED`, closed in the
same transaction, and every refund carries a key of (group, order), so two closers running
at once close each group once and refund each member once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.audit.services import Actor
from tuanbox.coupons.settlement import GROUP_PRICE_KEY, settle_group_price
from tuanbox.db.base import utcnow
from tuanbox.db.engine import session_scope
from tuanbox.groupbuy import pool
from tuanbox.groupbuy.domain import (
    GroupStatus,
    check_transition,
    final_unit_price,
    needs_one_more,
    outcome_at_close,
    refund_due,
)
from tuanbox.groupbuy.models import Campaign, Group, Member, UserQuota
from tuanbox.groupbuy.services import members_of, release_seat
from tuanbox.groupbuy.spec import tiers_from_json

if TYPE_CHECKING:
    from tuanbox.orders.models import Order

log = logging.getLogger("tuanbox.groupbuy")
SYSTEM = Actor(id="system:groupbuy", role="system")


@dataclass(frozen=True)
class Closed:
    """`GroupClosed`: how it ended and what was refunded (cents per order)."""

    group_id: str
    status: GroupStatus
    unit_price_cents: int | None
    refunds: dict[str, int]
    cancelled: list[str]


def close_group(session: Session, group: Group, now: datetime) -> Closed:
    """Close one locked group: confirm at the tier price (refunding overpayment) or fail."""
    from tuanbox.orders.models import Order
    from tuanbox.orders.services import transition
    from tuanbox.payments.services import refund

    campaign = session.get(Campaign, group.campaign_id)
    assert campaign is not None
    outcome = outcome_at_close(group.paid_count, group.min_size)
    check_transition(GroupStatus(group.status), outcome)
    group.status = outcome.value
    group.closed_at = now
    schedule = tiers_from_json(campaign.tiers)
    tier = schedule.reached(group.paid_count)
    group.final_unit_price_cents = (
        tier.price_cents if outcome is GroupStatus.CONFIRMED and tier else None
    )
    session.flush()  # the orders hooks below see a closed group and leave its seats alone
    if outcome is GroupStatus.CONFIRMED:
        # Risk control: members linked by a device, address or payment account are held for
        # review (`tuanbox.risk`); confirming them below then waits for ops instead.
        from tuanbox.risk.services import group_closing

        ids = [m.order_id for m in members_of(session, group.id) if m.order_id]
        orders = [o for o in (session.get(Order, i) for i in ids) if o and o.status == "paid"]
        group_closing(session, group.id, orders)

    refunds: dict[str, int] = {}
    cancelled: list[str] = []
    for member in members_of(session, group.id):
        if outcome is GroupStatus.FAILED:
            # The shopper got nothing from this group; their units may go to another one.
            session.execute(
                update(UserQuota)
                .where(UserQuota.campaign_id == campaign.id, UserQuota.user_id == member.user_id)
                .values(qty=UserQuota.qty - member.qty),
                execution_options={"synchronize_session": False},
            )
        order = session.get(Order, member.order_id)
        if order is None:
            continue
        key = f"{GROUP_PRICE_KEY}{group.id}:{order.id}"
        if order.status == "pending_payment":
            transition(
                session, order, "cancelled", actor=SYSTEM, reason=f"group {outcome.value} unpaid"
            )
            cancelled.append(order.id)
        elif order.status != "paid":
            continue  # already moved on (e.g. cancelled by the shopper); nothing to settle
        elif outcome is GroupStatus.CONFIRMED:
            final = final_unit_price(
                schedule,
                group.paid_count,
                is_leader=member.user_id == group.leader_user_id,
                leader_price_cents=campaign.leader_price_cents,
            )
            # The goods at the final price less the order's coupons and points, settled as
            # checkout would have at that price (`coupons.settlement.settle_group_price`);
            # the delivery fee decided at join stays owed: the order is still delivered.
            owed = settle_group_price(session, order, final)
            owed += order.delivery_fee_cents
            back = refund_due(order.paid_cents - order.refunded_cents, owed)
            if back:
                refund(session, order, back, f"group price tier reached: {owed} owed", key)
                refunds[order.id] = back
            if campaign.presale:
                # Bought from the supplier now; confirmed when the batch reaches the hub
                # (`tuanbox.presale.receiving`).
                order.awaiting = "receiving"
            else:
                transition(session, order, "confirmed", actor=SYSTEM, reason="group succeeded")
        else:
            # Cancelling a paid order makes payments owe its full amount back (their hook,
            # keyed per order), so a failed group refunds each member exactly once.
            back = order.paid_cents - order.refunded_cents
            transition(session, order, "cancelled", actor=SYSTEM, reason="group failed")
            if back > 0:
                refunds[order.id] = back
    if campaign.stock_cap is not None:
        pool.settle_group(session, group)
    log.info(
        "group closed", extra={"group": group.id, "status": outcome.value, "refunds": len(refunds)}
    )
    return Closed(group.id, outcome, group.final_unit_price_cents, refunds, cancelled)


def due_groups_query(now: datetime, limit: int) -> Select[Group]:
    return (
        select(Group)
        .where(
            or_(
                Group.status == GroupStatus.FILLED.value,
                and_(Group.status == GroupStatus.OPEN.value, Group.deadline_at <= now),
            )
        )
        .order_by(Group.deadline_at)
        .limit(limit)
        # Two closers never wait on each other: each takes the groups the other has not.
        .with_for_update(skip_locked=True)
    )


def close_due_groups(
    factory: sessionmaker[Session], now: datetime | None = None, batch: int = 50
) -> list[Closed]:
    """Close every due group, one committed batch at a time; safe to run concurrently.

    A group whose member order or SKU is locked right now (a payment webhook, a join in
    flight) is left for the next run: the closer never waits while holding its group, so it
    cannot deadlock with them (they hold those rows first and then want the group).
    """
    results: list[Closed] = []
    busy: set[str] = set()
    while True:
        moment = now or utcnow()
        with session_scope(factory) as session:
            query = due_groups_query(moment, batch)
            if busy:
                query = query.where(Group.id.not_in(busy))
            groups = list(session.scalars(query))
            for group in groups:
                if _can_close(session, group):
                    results.append(close_group(session, group, moment))
                else:
                    busy.add(group.id)
        if len(groups) < batch:
            break
    # Ended campaigns whose groups are all closed give the rest of their set-aside back.
    with session_scope(factory) as session:
        pool.close_ended_campaigns(session, now=now or utcnow())
    return results


def _can_close(session: Session, group: Group) -> bool:
    """Lock the group's member orders and its SKU, or report that someone else holds one.

    Closing releases stock (SKU row) and moves orders; a joiner holds the SKU and wants the
    group, a webhook holds an order and wants the group. Taking ours with SKIP LOCKED means
    the closer, which already holds the group, never waits on them.
    """
    from tuanbox.catalog.models import Sku
    from tuanbox.orders.models import Order

    campaign = session.get(Campaign, group.campaign_id)
    assert campaign is not None
    wanted = sorted(m.order_id for m in members_of(session, group.id) if m.order_id)
    got = session.scalars(
        select(Order.id)
        .where(Order.id.in_(wanted))
        .order_by(Order.id)
        .with_for_update(skip_locked=True)
    ).all()
    if len(got) != len(wanted):
        return False
    # FOR NO KEY UPDATE, what releasing stock takes anyway: FOR UPDATE would also stall the
    # foreign-key checks of every order inserted for this SKU meanwhile (joins included).
    sku = session.scalars(
        select(Sku.id)
        .where(Sku.id == campaign.sku_id)
        .with_for_update(skip_locked=True, key_share=True)
    ).first()
    return sku is not None


def on_order_paid(session: Session, order: Order, from_status: str) -> None:
    """Orders hook: a member paid; count it, fill the group, remind once at one-to-go."""
    member = _member_for(session, order)
    if member is None or member.paid:
        return
    member.paid = True
    row = session.execute(
        update(Group)
        .where(Group.id == member.group_id, Group.status == GroupStatus.OPEN.value)
        .values(paid_count=Group.paid_count + 1)
        .returning(Group.paid_count, Group.min_size, Group.max_size),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if row is None:
        return
    paid, min_size, max_size = row
    if paid >= max_size:
        # Filled: the next deadline scan closes it at once (durable, no in-memory timer).
        session.execute(
            update(Group)
            .where(Group.id == member.group_id, Group.status == GroupStatus.OPEN.value)
            .values(status=GroupStatus.FILLED.value),
            execution_options={"synchronize_session": False},
        )
    elif needs_one_more(paid, min_size):
        _remind_once(session, member.group_id)
    session.flush()


def _remind_once(session: Session, group_id: str) -> None:
    from tuanbox.notifications.services import notify

    won = session.execute(
        update(Group)
        .where(Group.id == group_id, Group.reminder_sent_at.is_(None))
        .values(reminder_sent_at=utcnow())
        .returning(Group.id),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if won is None:
        return  # someone already reminded this group
    for member in members_of(session, group_id):
        notify(session, member.user_id, "group_needs_one_more", {"group_id": group_id})


def on_order_lapsed(session: Session, order: Order, from_status: str) -> None:
    """Orders hook: a member's order was cancelled, expired or refunded. A cancelled or
    expired one frees its seat while the group is open; a capped campaign takes the units the
    order released back into its group's chunk or its pool (`pool.units_back`)."""
    member = _member_for(session, order)
    if member is not None and order.status != "refunded":
        group = session.get(Group, member.group_id)
        # A closed group keeps its members as the record of what happened.
        if group is not None and group.status == GroupStatus.OPEN.value:
            release_seat(session, group, member)
    if order.kind == "group" and order.group_id is not None:
        group = session.get(Group, order.group_id)
        campaign = session.get(Campaign, group.campaign_id) if group is not None else None
        if campaign is not None and campaign.stock_cap is not None:
            pool.units_back(session, order, from_status, campaign)


def _member_for(session: Session, order: Order) -> Member | None:
    if order.kind != "group":
        return None
    # Fresh from the row: the order is locked now, so `paid` is settled, but an object loaded
    # earlier in this session (say by leave_group) may predate a payment that just committed.
    return session.scalar(
        select(Member).where(Member.order_id == order.id).execution_options(populate_existing=True)
    )
