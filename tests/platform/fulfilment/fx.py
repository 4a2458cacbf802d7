"""Test data for fulfilment: stations, lockers, shoppers, SKUs and orders at a given status."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.fulfilment.allocation import allocate
from tuanbox.fulfilment.hooks import settings_of
from tuanbox.lockers.models import Locker, Station
from tuanbox.lockers.services import CompartmentSpec, create_locker, create_station
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition

TEST_ACTOR = Actor(id="test", role="system")


def make_station(session: Session, station_id: str | None = None) -> Station:
    return create_station(
        session,
        id=station_id or f"st-{uuid.uuid4().hex[:8]}",
        name="Lobby of building 7",
        address="7 Garden Road",
        lat=31.23,
        lon=121.47,
        opening_notes="06:00-23:00",
    )


def make_locker(
    session: Session,
    station_id: str,
    layout: list[CompartmentSpec],
    locker_id: str | None = None,
) -> tuple[Locker, str]:
    return create_locker(
        session,
        id=locker_id or f"L-{uuid.uuid4().hex[:8]}",
        station_id=station_id,
        layout=layout,
    )


def make_shopper(session: Session) -> User:
    user = User(role="shopper", display_name="Shopper")
    session.add(user)
    session.flush()
    return user


def make_sku(session: Session, size_class: str = "S", zone: str = "ambient") -> Sku:
    merchant = Merchant(name="Farm", licence_number=uuid.uuid4().hex, verified=True)
    session.add(merchant)
    session.flush()
    product = Product(merchant_id=merchant.id, name="Eggs", size_class=size_class, zone=zone)
    session.add(product)
    session.flush()
    sku = Sku(product_id=product.id, name="Box", price_cents=500, stock_on_hand=10_000)
    session.add(sku)
    session.flush()
    return sku


def make_order(
    session: Session, *, user: User, sku: Sku, station_id: str | None, qty: int = 1
) -> Order:
    """A paid order (not yet confirmed), so confirming it runs the fulfilment hook."""
    product = session.get(Product, sku.product_id)
    assert product is not None
    order = Order(
        user_id=user.id,
        merchant_id=product.merchant_id,
        sku_id=sku.id,
        qty=qty,
        unit_price_cents=sku.price_cents,
        total_cents=sku.price_cents * qty,
        paid_cents=sku.price_cents * qty,
        status="paid",
        station_id=station_id,
    )
    session.add(order)
    session.flush()
    return order


def confirm(session: Session, order: Order) -> Order:
    """Confirm the order and allocate it now, as the wave job does when its wave is due."""
    transition(session, order, "confirmed", actor=TEST_ACTOR, reason="group filled")
    if order.status == "confirmed" and order.wave_id is not None:
        allocate(session, order, settings=settings_of(session), now=utcnow())
    return order
