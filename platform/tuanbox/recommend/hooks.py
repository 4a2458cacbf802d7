"""Order hooks of recommendations: a picked-up order is counted, a returned one taken back
(both idempotent per order through ``rec_orders``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order


def _picked_up(session: Session, order: Order, from_status: str) -> None:
    from tuanbox.recommend.services import product_of, record

    record(
        session,
        order_id=order.id,
        user_id=order.user_id,
        product_id=product_of(session, order.sku_id),
        station_id=order.station_id,
        at=order.picked_up_at or utcnow(),
    )


def _returned(session: Session, order: Order, from_status: str) -> None:
    from tuanbox.recommend.services import take_back

    take_back(session, order.id)


on_status(OrderStatus.PICKED_UP, _picked_up)
on_status(OrderStatus.RETURNED, _returned)
on_status(OrderStatus.REFUNDED, _returned)
