"""Order hook of experiments: a paid order on a campaign under experiment is a conversion."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order


def _paid(session: Session, order: Order, from_status: str) -> None:
    from tuanbox.experiments.services import record_conversion

    record_conversion(session, order)


on_status(OrderStatus.PAID, _paid)
