"""Generated buyers for the segment tests: orders written straight to their final state."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tuanbox.catalog.models import Product, Sku
from tuanbox.orders.models import Order


def merchant_sku(session: Session) -> Sku:
    return make_sku(session, make_product(session, make_merchant(session)), stock=1_000_000)


def paid_order(
    session: Session,
    sku: Sku,
    user_id: str,
    *,
    paid_at: datetime,
    cents: int,
    status: str = "completed",
    refunded: int = 0,
) -> Order:
    order = Order(
        user_id=user_id,
        merchant_id=session.get(Product, sku.product_id).merchant_id,  # type: ignore[union-attr]
        sku_id=sku.id,
        qty=1,
        unit_price_cents=cents,
        total_cents=cents,
        paid_cents=cents,
        refunded_cents=refunded,
        status=status,
        paid_at=paid_at,
    )
    session.add(order)
    return order


def generated_buyers(
    session: Session, sku: Sku, n: int, now: datetime, seed: int = 7
) -> list[tuple[str, datetime, int, int]]:
    """n buyers with 1-6 orders each over 120 days; returns (user, last paid, count, cents)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        user = make_user(session)
        times = [
            now - timedelta(minutes=rng.randrange(1, 120 * 1440)) for _ in range(rng.randint(1, 6))
        ]
        cents = [rng.choice([990, 1990, 2990, 4990, 12_000]) for _ in times]
        for at, c in zip(times, cents, strict=True):
            paid_order(session, sku, user.id, paid_at=at, cents=c)
        out.append((user.id, max(times), len(times), sum(cents)))
    session.flush()
    return out
