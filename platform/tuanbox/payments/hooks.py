"""Order hooks of payments: a paid order that is cancelled or expires is refunded in full."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order


def _refund_outstanding(session: Session, order: Order, from_status: str) -> None:
    from tuanbox.payments.services import refund, refundable_cents

    amount = refundable_cents(session, order)
    if amount > 0:
        refund(
            session,
            order,
            amount,
            reason=f"order {order.status}",
            key=f"order-{order.status}:{order.id}",
        )


on_status(OrderStatus.CANCELLED, _refund_outstanding)
on_status(OrderStatus.EXPIRED, _refund_outstanding)
