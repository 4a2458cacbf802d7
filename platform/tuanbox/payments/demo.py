"""Demo step: a regular purchase paid through SimPay, a duplicate and a late webhook, refunds."""

from __future__ import annotations

import uuid

from tuanbox.settings import Settings


def buy_pay_refund(settings: Settings) -> str:
    """One shopper buys, pays, the webhook comes twice; another pays after expiry; both end well."""
    from tuanbox.accounts.models import User
    from tuanbox.audit.services import Actor
    from tuanbox.catalog.models import Merchant, Product, Sku
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.orders.models import Order
    from tuanbox.orders.services import create_order, expire_unpaid, transition
    from tuanbox.payments.services import handle_event, process_due_refunds, start_checkout
    from tuanbox.payments.simpay import SimPay

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    sim = SimPay(settings)
    try:
        with session_scope(factory) as s:
            merchant = Merchant(
                name="Chongming Rice Co.",
                licence_number=f"DEMO-{uuid.uuid4().hex[:8]}",
                verified=True,
            )
            s.add(merchant)
            s.flush()
            product = Product(merchant_id=merchant.id, name="New-crop rice 5 kg", size_class="L")
            s.add(product)
            s.flush()
            sku = Sku(product_id=product.id, name="5 kg", price_cents=6800, stock_on_hand=10)
            alice, bob = User(role="shopper"), User(role="shopper")
            s.add_all([sku, alice, bob])
            s.flush()
            kept = create_order(s, user_id=alice.id, sku_id=sku.id, qty=2, unit_price_cents=6800)
            lapsed = create_order(
                s, user_id=bob.id, sku_id=sku.id, qty=1, unit_price_cents=6800, pay_timeout_s=1
            )
            kept_intent = start_checkout(s, kept, sim)
            lapsed_intent = start_checkout(s, lapsed, sim)
            lapsed.pay_deadline = lapsed.created_at  # already overdue
            ids = (kept.id, lapsed.id, sku.id)
        with session_scope(factory) as s:
            body, headers = sim.payment_webhook(
                sim.charge(s, kept_intent.id, kept_intent.amount_cents)
            )
            first = handle_event(s, sim.verify_webhook(headers, body))
            again = handle_event(s, sim.verify_webhook(headers, body))
        expired = expire_unpaid(factory)
        with session_scope(factory) as s:
            body, headers = sim.payment_webhook(
                sim.charge(s, lapsed_intent.id, lapsed_intent.amount_cents)
            )
            late = handle_event(s, sim.verify_webhook(headers, body))
            transition(
                s,
                ids[0],
                "cancelled",
                actor=Actor(id="demo", role="shopper"),
                reason="changed mind",
            )
        refunds = process_due_refunds(factory, lambda _name: sim)
        with session_scope(factory) as s:
            a, b, stock = s.get(Order, ids[0]), s.get(Order, ids[1]), s.get(Sku, ids[2])
            assert a is not None and b is not None and stock is not None
            return (
                f"alice paid ¥136.00 (webhook {first}, repeat {again}); bob's order expired "
                f"({expired} expired) and his late payment was {late}\n"
                f"      alice cancelled → {a.status} ¥{a.refunded_cents / 100:.2f}; bob → "
                f"{b.status} ¥{b.refunded_cents / 100:.2f}; refund run {refunds}; "
                f"stock {stock.stock_on_hand} on hand, {stock.stock_reserved} reserved"
            )
    finally:
        engine.dispose()
