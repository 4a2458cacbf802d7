"""Order hooks of returns: when a returned order's refund completes, the return is closed."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order


def _refunded(session: Session, order: Order, from_status: str) -> None:
    if from_status == OrderStatus.RETURNED:
        from tuanbox.returns.services import on_refunded

        on_refunded(session, order.id)


on_status(OrderStatus.REFUNDED, _refunded)
