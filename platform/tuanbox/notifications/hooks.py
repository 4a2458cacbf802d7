"""Order hooks of notifications: tell the shopper when money moved (paid, refunded)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.notifications.services import notify
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order


def _paid(session: Session, order: Order, from_status: str) -> None:
    notify(session, order.user_id, "order_paid", {"order_id": order.id, "cents": order.paid_cents})


def _refunded(session: Session, order: Order, from_status: str) -> None:
    notify(
        session,
        order.user_id,
        "order_refunded",
        {"order_id": order.id, "cents": order.refunded_cents, "was": from_status},
    )


on_status(OrderStatus.PAID, _paid)
on_status(OrderStatus.REFUNDED, _refunded)
