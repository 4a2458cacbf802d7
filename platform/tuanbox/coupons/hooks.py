"""Order hooks of coupons and points: earn on pickup; an unpaid order that is cancelled or
expires gives its coupons and points back at once (a paid one does on its refund)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order


def _picked_up(session: Session, order: Order, from_status: str) -> None:
    from tuanbox.coupons.settlement import earn

    earn(session, order)


def _closed_unpaid(session: Session, order: Order, from_status: str) -> None:
    from tuanbox.coupons.checkout import release_unpaid
    from tuanbox.payments.services import applied_cents

    if not applied_cents(session, order.id):
        release_unpaid(session, order)


on_status(OrderStatus.PICKED_UP, _picked_up)
on_status(OrderStatus.CANCELLED, _closed_unpaid)
on_status(OrderStatus.EXPIRED, _closed_unpaid)
