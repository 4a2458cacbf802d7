"""Which invitees count: an invitee counts for their inviter once their first paid order
(placed after the binding) is picked up and nothing of it was refunded. A refund at any
time later takes the count back, because every count is computed from the orders."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tuanbox.growth.models import ReferralBinding
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.models import Order

COUNTED = (OrderStatus.PICKED_UP, OrderStatus.COMPLETED)


def _first_orders() -> Any:
    """Each invitee's first paid order (earliest paid_at, then id)."""
    rank = (
        func.row_number()
        .over(partition_by=Order.user_id, order_by=(Order.paid_at, Order.id))
        .label("rank")
    )
    return (
        select(
            Order.user_id,
            Order.status,
            Order.refunded_cents,
            Order.paid_at,
            Order.picked_up_at,
            rank,
        )
        .where(
            Order.paid_at.is_not(None),
            Order.user_id.in_(select(ReferralBinding.invitee_id)),
        )
        .subquery()
    )


def qualifying(
    *,
    inviter_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Select[Any]:
    """(inviter_id, invitee_id, counted_at) of each invitee that counts; `since`/`until`
    bound the pickup time of the first order (a period or a task's window)."""
    first = _first_orders()
    query = (
        select(
            ReferralBinding.inviter_id,
            ReferralBinding.invitee_id,
            first.c.picked_up_at.label("counted_at"),
        )
        .join(first, first.c.user_id == ReferralBinding.invitee_id)
        .where(
            first.c.rank == 1,
            first.c.status.in_([str(s) for s in COUNTED]),
            first.c.refunded_cents == 0,
            first.c.picked_up_at.is_not(None),
            first.c.paid_at >= ReferralBinding.bound_at,
        )
    )
    if inviter_id is not None:
        query = query.where(ReferralBinding.inviter_id == inviter_id)
    if since is not None:
        query = query.where(first.c.picked_up_at >= since)
    if until is not None:
        query = query.where(first.c.picked_up_at < until)
    return query


def count_for(
    session: Session,
    inviter_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    sub = qualifying(inviter_id=inviter_id, since=since, until=until).subquery()
    return int(session.scalar(select(func.count()).select_from(sub)) or 0)
