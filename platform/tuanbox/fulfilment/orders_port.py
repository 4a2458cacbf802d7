"""The narrow view fulfilment has of orders and catalog: read an order's needs, move its status."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Product, Sku
from tuanbox.lockers.domain import units_for
from tuanbox.orders.models import Order

# Status changes driven by lockers are made by the system, not by a person.
SYSTEM = Actor(id="system:fulfilment", role="system")


def needs(session: Session, order: Order) -> tuple[str, int]:
    """(zone, size units) the order needs in a compartment."""
    row = session.execute(
        select(Product.zone, Product.size_class)
        .join(Sku, Sku.product_id == Product.id)
        .where(Sku.id == order.sku_id)
    ).one()
    return str(row.zone), units_for(str(row.size_class), order.qty)


def move(session: Session, order: Order, to: str, reason: str, actor: Actor = SYSTEM) -> None:
    """Move an order along its state machine unless it is already there."""
    from tuanbox.orders.services import transition

    if order.status == to:
        return
    transition(session, order, to, actor=actor, reason=reason)


def get_order(session: Session, order_id: str, *, lock: bool = False) -> Order | None:
    return session.get(Order, order_id, with_for_update=lock)
