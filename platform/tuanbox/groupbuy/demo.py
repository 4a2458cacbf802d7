"""Demo step: a tiered group fills with 5 shoppers who pay through SimPay, then closes at the
tier price and the difference goes back to those who paid more."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from tuanbox.settings import Settings


def tiered_group(settings: Settings) -> str:
    """Runs on whatever database the settings name (SQLite by default) and real Redis."""
    from tuanbox.accounts.models import User
    from tuanbox.catalog.models import Merchant, Product, Sku
    from tuanbox.db.base import utcnow
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.groupbuy import services
    from tuanbox.groupbuy.closing import close_due_groups
    from tuanbox.groupbuy.domain import CampaignKind, Tier
    from tuanbox.groupbuy.models import Group
    from tuanbox.groupbuy.spec import CampaignSpec
    from tuanbox.orders.models import Order
    from tuanbox.payments.models import PaymentIntent, Refund
    from tuanbox.payments.services import handle_event, process_due_refunds, start_checkout
    from tuanbox.payments.simpay import SimPay

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    sim = SimPay(settings)
    list_price = 3000
    lines: list[str] = []
    try:
        with session_scope(factory) as s:
            merchant = Merchant(
                name="Dali Berry Farm", licence_number=f"DEMO-{uuid.uuid4().hex[:8]}"
            )
            s.add(merchant)
            s.flush()
            product = Product(merchant_id=merchant.id, name="Blueberries 500 g", zone="chilled")
            s.add(product)
            s.flush()
            sku = Sku(product_id=product.id, name="500 g", price_cents=list_price, stock_on_hand=50)
            staff = User(role="merchant_staff", merchant_id=merchant.id, display_name="staff")
            shoppers = [User(role="shopper", display_name=f"shopper {i + 1}") for i in range(5)]
            s.add_all([sku, staff, *shoppers])
            s.flush()
            now = utcnow()
            campaign = services.create_campaign(
                s,
                merchant_id=merchant.id,
                actor_id=staff.id,
                spec=CampaignSpec(
                    sku_id=sku.id,
                    title="Blueberries: 3 → 90 %, 5 → 80 %",
                    kind=CampaignKind.TIERED,
                    tiers=(Tier(3, list_price * 90 // 100), Tier(5, list_price * 80 // 100)),
                    max_size=5,
                    starts_at=now - timedelta(minutes=1),
                    ends_at=now + timedelta(days=1),
                ),
            )
            opened = services.open_group(
                s, campaign_id=campaign.id, user_id=shoppers[0].id, now=now
            )
            joined = [opened] + [
                services.join_group(s, group_id=opened.group.id, user_id=u.id, now=now)
                for u in shoppers[1:]
            ]
            group_id = opened.group.id
            orders = [j.order_id for j in joined]
        lines.append(
            "tiered campaign (list ¥30.00): 3 → ¥27.00, 5 → ¥24.00; group "
            f"{group_id[:8]} opened, 5 shoppers joined paying "
            + ", ".join(f"¥{j.unit_price_cents / 100:.2f}" for j in joined)
        )
        # Each member pays like a shopper: checkout, the hosted page charges, a signed webhook.
        for order_id in orders:
            with session_scope(factory) as s:
                order = s.get(Order, order_id)
                assert order is not None
                intent_id = start_checkout(s, order, sim).id
            with session_scope(factory) as s:
                intent = s.get(PaymentIntent, intent_id)
                assert intent is not None
                record = sim.charge(s, intent.id, intent.amount_cents)
                body, headers = sim.payment_webhook(record)
            with session_scope(factory) as s:
                handle_event(s, sim.verify_webhook(headers, body))
        with session_scope(factory) as s:
            group = s.get(Group, group_id)
            assert group is not None
            lines.append(f"all 5 paid through SimPay webhooks → group {group.status}")
        closed = [c for c in close_due_groups(factory) if c.group_id == group_id]
        assert closed, "the filled group was not closed"
        result = closed[0]
        paid_refunds = process_due_refunds(factory, lambda _name: sim)
        with session_scope(factory) as s:
            refunds = list(s.scalars(select(Refund).where(Refund.order_id.in_(orders))))
            statuses = sorted(
                {o.status for o in s.scalars(select(Order).where(Order.id.in_(orders)))}
            )
        lines.append(
            f"group closed {result.status} at ¥{(result.unit_price_cents or 0) / 100:.2f} each; "
            f"orders {', '.join(statuses)}"
        )
        lines.append(
            f"{len(refunds)} members refunded the difference: "
            + ", ".join(f"¥{r.amount_cents / 100:.2f} ({r.status})" for r in refunds)
            + f"; refund run {paid_refunds}"
        )
    finally:
        engine.dispose()
    return "\n      ".join(lines)
