"""Demo step: a flash sale of 3 units meets 8 buyers; Redis admits, the DB records, no oversell."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tuanbox.settings import Settings


def flash_sale(settings: Settings) -> str:
    from tuanbox.accounts.models import User
    from tuanbox.catalog.models import Merchant, Product, Sku
    from tuanbox.db.base import utcnow
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.errors import ConflictError
    from tuanbox.flashsale import services
    from tuanbox.flashsale.counters import FlashCounters

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    counters = FlashCounters.from_url(settings.redis_url)
    try:
        with session_scope(factory) as s:
            merchant = Merchant(name="Durian Co", licence_number=f"DEMO-{uuid.uuid4().hex[:8]}")
            s.add(merchant)
            s.flush()
            product = Product(merchant_id=merchant.id, name="Musang King durian")
            s.add(product)
            s.flush()
            sku = Sku(product_id=product.id, name="1 box", price_cents=9900, stock_on_hand=20)
            staff = User(role="merchant_staff", merchant_id=merchant.id)
            buyers = [User(role="shopper") for _ in range(8)]
            s.add_all([sku, staff, *buyers])
            s.flush()
            now = utcnow()
            sale = services.create_sale(
                s,
                merchant_id=merchant.id,
                actor_id=staff.id,
                spec=services.SaleSpec(
                    sku_id=sku.id,
                    title="秒杀: 3 boxes at ¥9.90",
                    price_cents=990,
                    stock_cap=3,
                    per_user_limit=1,
                    starts_at=now - timedelta(minutes=1),
                    ends_at=now + timedelta(minutes=10),
                ),
            )
            sale_id, buyer_ids = sale.id, [b.id for b in buyers]
        outcomes: list[str] = []
        for i, buyer in enumerate(buyer_ids):
            with factory() as s:
                try:
                    services.reserve(
                        s,
                        counters,
                        sale_id=sale_id,
                        user_id=buyer,
                        request_id=f"demo-{i}",
                        qty=1,
                        now=utcnow(),
                    )
                    outcomes.append("won")
                except ConflictError as exc:
                    outcomes.append(exc.code)
        with session_scope(factory) as s:
            remaining = services.get_sale(s, sale_id).remaining
            sold = services.sold_count(s, sale_id)
        redis_stock, _, held = counters.snapshot(sale_id)
        counters.forget(sale_id)
    finally:
        counters.close()
        engine.dispose()
    return (
        f"8 buyers for 3 units: {outcomes.count('won')} won, "
        f"{outcomes.count('SOLD_OUT')} sold out; DB sold {sold} (remaining {remaining}), "
        f"Redis stock {redis_stock} with {len(held)} reservations — they agree"
    )
