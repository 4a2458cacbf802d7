"""Test data for fulfilment: stations, lockers, shoppers, SKUs and orders at a given status."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import Base, utcnow
from tuanbox.fulfilment import codes
from tuanbox.fulfilment.allocation import allocate
from tuanbox.fulfilment.codes import Kind
from tuanbox.fulfilment.hooks import settings_of
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.models import Locker, Station
from tuanbox.lockers.services import CompartmentSpec, create_locker, create_station
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.settings import Settings

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


def courier_code(settings: Settings, booking: Booking, kind: Kind = "deposit") -> str:
    """A booking's courier code in clear, as the run sheet would show it ("" when unset)."""
    sealed = booking.deposit_code_enc if kind == "deposit" else booking.retrieval_code_enc
    return codes.reveal(PiiCipher(settings), booking.ref, kind, sealed) if sealed else ""


def columns_holding(session: Session, code: str) -> list[str]:
    """Every `table.column` (all tables) whose text or JSON value contains `code`: a database
    scan for a secret left in clear. Only str and JSON values are read (a timestamp's
    microseconds are six digits too)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)).mappings():
            for column, value in row.items():
                if isinstance(value, dict | list):
                    value = json.dumps(value)
                if isinstance(value, str) and code in value:
                    found.append(f"{table.name}.{column}")
    return found
