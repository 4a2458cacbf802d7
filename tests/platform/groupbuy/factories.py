"""Test data for group-buy, flash-sale and pre-sale tests: merchants, SKUs, shoppers, campaigns."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import Principal
from tuanbox.accounts.models import User
from tuanbox.accounts.tokens import issue_access_token
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine
from tuanbox.groupbuy.domain import CampaignKind, Tier
from tuanbox.groupbuy.seats import Join, request_id
from tuanbox.groupbuy.spec import CampaignSpec
from tuanbox.settings import Settings


@dataclass(frozen=True)
class Shop:
    merchant_id: str
    sku_id: str
    staff_id: str


def make_shop(session: Session, *, stock: int = 1000, price_cents: int = 1000) -> Shop:
    merchant = Merchant(name="Green Farm", licence_number=f"LIC-{uuid.uuid4().hex[:10]}")
    session.add(merchant)
    session.flush()
    product = Product(merchant_id=merchant.id, name="Blueberries 500 g", zone="chilled")
    session.add(product)
    session.flush()
    sku = Sku(product_id=product.id, name="500 g", price_cents=price_cents, stock_on_hand=stock)
    staff = User(role="merchant_staff", merchant_id=merchant.id, display_name="staff")
    session.add_all([sku, staff])
    session.flush()
    return Shop(merchant.id, sku.id, staff.id)


def make_shoppers(session: Session, n: int) -> list[str]:
    users = [User(role="shopper", display_name=f"shopper {i}") for i in range(n)]
    session.add_all(users)
    session.flush()
    return [u.id for u in users]


def token_for(
    settings: Settings, user_id: str, role: str = "shopper", merchant_id: str | None = None
) -> str:
    return issue_access_token(settings, Principal(id=user_id, role=role, merchant_id=merchant_id))


def auth(
    settings: Settings, user_id: str, role: str = "shopper", merchant_id: str | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(settings, user_id, role, merchant_id)}"}


def tiered_spec(
    sku_id: str,
    *,
    tiers: tuple[Tier, ...] = (Tier(3, 900), Tier(5, 800), Tier(10, 700)),
    max_size: int = 10,
    now: datetime | None = None,
    **overrides: object,
) -> CampaignSpec:
    start = (now or utcnow()) - timedelta(minutes=1)
    values: dict[str, object] = {
        "sku_id": sku_id,
        "title": "Blueberries, tiered",
        "kind": CampaignKind.TIERED,
        "tiers": tiers,
        "max_size": max_size,
        "starts_at": start,
        "ends_at": start + timedelta(days=7),
        "group_ttl_s": 24 * 3600,
        "per_user_limit": 2,
    }
    values.update(overrides)
    return CampaignSpec(**values)  # type: ignore[arg-type]


def fixed_spec(
    sku_id: str, *, members: int = 5, price_cents: int = 800, **overrides: object
) -> CampaignSpec:
    return tiered_spec(
        sku_id,
        tiers=(Tier(members, price_cents),),
        max_size=overrides.pop("max_size", members),  # type: ignore[arg-type]
        kind=CampaignKind.FIXED,
        **overrides,
    )


def pay(session: Session, settings: Settings, order_id: str) -> str:
    """Pay an order the way a shopper does: SimPay checkout, charge, signed webhook."""
    from tuanbox.orders.models import Order
    from tuanbox.payments.services import handle_event, start_checkout
    from tuanbox.payments.simpay import SimPay

    sim = SimPay(settings)
    order = session.get(Order, order_id)
    assert order is not None
    intent = start_checkout(session, order, sim)
    record = sim.charge(session, intent.id, intent.amount_cents)
    body, headers = sim.payment_webhook(record)
    return handle_event(session, sim.verify_webhook(headers, body))


@pytest.fixture
def engines() -> Iterator[Callable[..., Engine]]:
    """Engines for tests with their own database, disposed even when the test fails."""
    made: list[Engine] = []

    def make(url: str, **kwargs: Any) -> Engine:
        engine = make_engine(url, **kwargs)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


def queued_join(group_id: str, user_id: str, key: str, device: str | None = None) -> Join:
    """A join as the seat script queues it (one seat, no station or IP), for the stream
    tests that drive the seats and the consumer without HTTP."""
    return Join(
        group_id=group_id,
        user_id=user_id,
        request_id=request_id(user_id, key),
        qty=1,
        reservation_id=str(uuid.uuid4()),
        station_id=None,
        ip=None,
        device=device,
        key=key,
        digest="d" * 64,
    )
