"""Return use cases: request within the window, drop-off, receipt (which refunds), withdraw."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.services import lock_order, transition
from tuanbox.payments.services import refund, refundable_cents
from tuanbox.returns.errors import (
    NotReturnableError,
    ReturnNotFoundError,
    ReturnStateError,
    ReturnWindowClosedError,
)
from tuanbox.returns.models import ReturnRequest

RETURNABLE_FROM = frozenset({OrderStatus.PICKED_UP, OrderStatus.COMPLETED})
METHODS = frozenset({"locker", "courier"})


def request_return(
    session: Session,
    order_id: str,
    actor: Actor,
    *,
    method: str,
    reason: str = "",
    window_days: int = 7,
    now: datetime | None = None,
) -> ReturnRequest:
    """Open a no-reason return for a picked-up order of a returnable product."""
    if method not in METHODS:
        raise NotReturnableError(f"method must be one of {sorted(METHODS)}")
    order = lock_order(session, order_id)
    if order.user_id != actor.id:
        raise ReturnNotFoundError("order not found")
    sku = session.get(Sku, order.sku_id)
    product = session.get(Product, sku.product_id) if sku else None
    if product is None or not product.returnable:
        raise NotReturnableError("this product is not eligible for no-reason returns")
    if order.status not in RETURNABLE_FROM or order.picked_up_at is None:
        raise NotReturnableError(f"a {order.status} order cannot be returned")
    deadline = order.picked_up_at + timedelta(days=window_days)
    if (now or utcnow()) > deadline:
        raise ReturnWindowClosedError(
            f"the {window_days}-day return window closed", closed_at=deadline.isoformat()
        )
    existing = session.scalars(
        select(ReturnRequest).where(ReturnRequest.order_id == order.id)
    ).one_or_none()
    if existing is not None:
        if existing.status != "withdrawn":
            raise ReturnStateError("a return for this order is already open")
        session.delete(existing)
        session.flush()
    row = ReturnRequest(order_id=order.id, user_id=actor.id, method=method, reason=reason)
    session.add(row)
    transition(session, order, OrderStatus.RETURN_REQUESTED, actor=actor, reason=reason or "return")
    session.flush()
    return row


def get_return(session: Session, return_id: str, *, lock: bool = False) -> ReturnRequest:
    query = select(ReturnRequest).where(ReturnRequest.id == return_id)
    if lock:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise ReturnNotFoundError("return not found")
    return row


def mark_dropped_off(
    session: Session,
    return_id: str,
    actor: Actor,
    *,
    station_id: str | None = None,
    tracking: str | None = None,
) -> ReturnRequest:
    """The goods are in a locker compartment or with the courier (fulfilment calls this)."""
    row = get_return(session, return_id, lock=True)
    if row.status == "dropped_off":
        return row
    if row.status != "requested":
        raise ReturnStateError(f"return is {row.status}, not awaiting drop-off")
    row.status = "dropped_off"
    row.dropped_off_at = utcnow()
    row.station_id = station_id or row.station_id
    row.courier_tracking = tracking or row.courier_tracking
    return row


def mark_received(session: Session, return_id: str, actor: Actor) -> ReturnRequest:
    """The merchant has the goods back: the order is returned and a full refund is owed."""
    row = get_return(session, return_id, lock=True)
    if row.status in ("received", "refunded"):
        return row
    if row.status != "dropped_off":
        raise ReturnStateError(f"return is {row.status}; it must be dropped off first")
    order = transition(session, row.order_id, OrderStatus.RETURNED, actor=actor, reason="received")
    row.status = "received"
    row.received_at = utcnow()
    amount = refundable_cents(session, order)
    if amount > 0:
        owed = refund(session, order, amount, reason="no-reason return", key=f"return:{row.id}")
        row.refund_id = owed.id
    return row


def withdraw(session: Session, return_id: str, actor: Actor) -> ReturnRequest:
    row = get_return(session, return_id, lock=True)
    if row.user_id != actor.id:
        raise ReturnNotFoundError("return not found")
    if row.status != "requested":
        raise ReturnStateError("only a return not yet dropped off can be withdrawn")
    row.status = "withdrawn"
    transition(session, row.order_id, OrderStatus.COMPLETED, actor=actor, reason="return withdrawn")
    return row


def on_refunded(session: Session, order_id: str) -> None:
    row = session.scalars(
        select(ReturnRequest).where(ReturnRequest.order_id == order_id)
    ).one_or_none()
    if row is not None and row.status == "received":
        row.status = "refunded"
