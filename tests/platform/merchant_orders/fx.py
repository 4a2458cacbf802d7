"""Test data for the console's order side: orders of one merchant in any state, at any time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from tests.platform.factories import make_product, make_sku, make_user
from tuanbox.catalog.models import Merchant, Sku
from tuanbox.orders.models import Order
from tuanbox.settings import Settings

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def put_order(
    session: Session,
    merchant: Merchant,
    *,
    status: str = "paid",
    awaiting: str | None = None,
    picked_up: bool = False,
    at: datetime = T0,
    sku: Sku | None = None,
    station_id: str | None = None,
    group_id: str | None = None,
    user_id: str | None = None,
    qty: int = 1,
) -> Order:
    """An order row written as it stands (no transitions): for lists, tabs and exports."""
    sku = sku or make_sku(session, make_product(session, merchant), stock=1000)
    order = Order(
        user_id=user_id or make_user(session).id,
        merchant_id=merchant.id,
        sku_id=sku.id,
        qty=qty,
        unit_price_cents=sku.price_cents,
        total_cents=sku.price_cents * qty,
        paid_cents=0 if status == "pending_payment" else sku.price_cents * qty,
        status=status,
        awaiting=awaiting,
        picked_up_at=at + timedelta(hours=5) if picked_up else None,
        station_id=station_id,
        group_id=group_id,
        created_at=at,
        updated_at=at,
    )
    session.add(order)
    session.flush()
    return order


def shopper_with_phone(session: Session, settings: Settings, phone: str) -> str:
    return make_user(session, phone=phone, settings=settings).id
