"""Demo steps of growth: a referral counted, a coupon applied, points earned and reversed, a
membership bought; then a push to a segment and an A/B test's result per arm.

Everything goes through the services the API calls and SimPay's signed webhooks, on the
demo's database (SQLite by default) and the real Redis; each phase commits on its own, as
SimPay books charges on its own connection like a gateway would.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import redis
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.settings import Settings


def _pay(made: sessionmaker[Session], settings: Settings, order_id: str) -> str:
    """Checkout, SimPay charge and its signed webhook, in three transactions."""
    from tuanbox.db.engine import session_scope
    from tuanbox.orders.models import Order
    from tuanbox.payments.services import handle_event, start_checkout
    from tuanbox.payments.simpay import SimPay

    sim = SimPay(settings)
    with session_scope(made) as s:
        order = s.get(Order, order_id)
        assert order is not None
        intent = start_checkout(s, order, sim)
        intent_id, amount = intent.id, intent.amount_cents
    with session_scope(made) as s:
        body, headers = sim.payment_webhook(sim.charge(s, intent_id, amount))
    with session_scope(made) as s:
        return handle_event(s, sim.verify_webhook(headers, body))


def referral_coupon_points_membership(settings: Settings) -> str:
    """Inviter → invitee from a share link; the invitee's first order with a ¥5 coupon split
    over its units, paid, picked up (points earned, the inviter's count +1); one unit refunded
    (points taken back in proportion, the count taken back); the inviter buys a membership."""
    from tuanbox.accounts.models import User
    from tuanbox.audit.services import Actor
    from tuanbox.catalog.models import Merchant, Product, Sku
    from tuanbox.coupons import checkout
    from tuanbox.coupons.services import create_template, issue_one
    from tuanbox.coupons.settlement import refund_units
    from tuanbox.db.base import utcnow
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.growth import binding, qualify
    from tuanbox.membership import services as membership
    from tuanbox.membership.pricing import DeliveryTerms, price_order
    from tuanbox.orders.models import Order
    from tuanbox.orders.services import create_order, transition
    from tuanbox.payments.services import handle_event, process_refund
    from tuanbox.payments.simpay import SimPay
    from tuanbox.points import services as points

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    sim = SimPay(settings)
    system = Actor("demo", "system")
    lines: list[str] = []
    try:
        with session_scope(factory) as s:
            merchant = Merchant(
                name="Demo orchard", licence_number=f"DEMO-{uuid.uuid4().hex[:8]}", verified=True
            )
            inviter = User(role="shopper", display_name="Demo inviter")
            invitee = User(role="shopper", display_name="Demo invitee")
            s.add_all([merchant, inviter, invitee])
            s.flush()
            product = Product(merchant_id=merchant.id, name="Peaches 1 kg", size_class="S")
            s.add(product)
            s.flush()
            sku = Sku(product_id=product.id, name="1 kg", price_cents=1200, stock_on_hand=20)
            s.add(sku)
            s.flush()
            bound = binding.bind(s, invitee_id=invitee.id, inviter_id=inviter.id, source="link")
            now = utcnow()
            template = create_template(
                s,
                created_by="demo",
                name="¥5 off, no threshold",
                kind="amount_off",
                amount_off_cents=500,
                valid_from=now - timedelta(minutes=1),
                valid_until=now + timedelta(days=30),
                per_user_limit=1,
                stackable=True,
            )
            coupon = issue_one(s, template.id, invitee.id, f"demo-welcome:{invitee.id}")
            order = create_order(s, user_id=invitee.id, sku_id=sku.id, qty=3, unit_price_cents=1200)
            policy = checkout.Policy(cents_per_point=1, max_points_share_pct=50)
            before = order.total_cents
            discount = checkout.apply(s, order.id, invitee.id, [coupon.id], 0, policy)
            split = [line.coupon_cents for line in checkout.lines_of(s, order.id)]
            ids = (inviter.id, invitee.id, order.id)
            sku_id = sku.id
            lines.append(
                f"share link: {bound.inviter_id[:8]} → {invitee.id[:8]} bound "
                f"(new={bound.created}); invitee's order 3 × ¥12.00 = ¥{before / 100:.2f}, "
                f"coupon −¥{discount.coupon_cents / 100:.2f} split per unit "
                f"{'/'.join(f'¥{c / 100:.2f}' for c in split)} → pays "
                f"¥{(before - order.discount_cents) / 100:.2f}"
            )
        inviter_id, invitee_id, order_id = ids
        paid = _pay(factory, settings, order_id)
        with session_scope(factory) as s:
            placed = s.get(Order, order_id)
            assert placed is not None
            for status in ("allocated", "ready_for_pickup", "picked_up"):
                if placed.status == "paid":
                    transition(s, placed, "confirmed", actor=system, reason="demo")
                transition(s, placed, status, actor=system, reason="demo")
            earned = points.balance_of(s, invitee_id)[0]
            counted = qualify.count_for(s, inviter_id)
            lines.append(
                f"paid ({paid}) and picked up: invitee earned {earned} points "
                f"(1 per yuan paid); inviter's invites counted: {counted}"
            )
        with session_scope(factory) as s:
            row = refund_units(s, order_id, 1, reason="one bruised box", key=f"demo:{order_id}")
            refund_id, refund_cents = row.id, row.amount_cents
        with session_scope(factory) as s:
            outcome = process_refund(s, refund_id, sim)
        with session_scope(factory) as s:
            left = points.balance_of(s, invitee_id)[0]
            counted_after = qualify.count_for(s, inviter_id)
            lines.append(
                f"one unit refunded ¥{refund_cents / 100:.2f} ({outcome}): points {earned} → "
                f"{left} (reversed in proportion); invites counted {counted} → {counted_after} "
                "(a refunded first order does not count)"
            )
        with session_scope(factory) as s:
            term, _url = membership.start_purchase(s, settings, inviter_id, sim)
            term_id, term_cents = term.id, term.amount_cents
        with session_scope(factory) as s:
            body, headers = sim.payment_webhook(sim.charge(s, term_id, term_cents))
        with session_scope(factory) as s:
            first = handle_event(s, sim.verify_webhook(headers, body))
            repeat = handle_event(s, sim.verify_webhook(headers, body))
            row_m = membership.status(s, inviter_id)
            assert row_m is not None
            lines.append(
                f"inviter bought a membership ¥{term_cents / 100:.2f} (webhook {first}, "
                f"repeat {repeat}): member until {row_m.ends_at:%Y-%m-%d}, "
                f"ledger {[(e.kind, e.cents) for e in membership.ledger(s, inviter_id)]}"
            )
        with session_scope(factory) as s:
            # Member perks (`tuanbox.membership.pricing`): a member price on the peaches and the
            # delivery fee (the configured one, else ¥5 free over ¥39 for the show).
            membership.set_member_price(s, sku_id, 1080, "demo")
            terms = DeliveryTerms.of(settings)
            if not terms.fee_cents:
                terms = DeliveryTerms(500, 3900)
            member_q, other_q = (
                price_order(s, user_id=u, sku_id=sku_id, offer_cents=1200, qty=1, delivery=terms)
                for u in (inviter_id, invitee_id)
            )
            lines.append(
                f"one box, delivery ¥{terms.fee_cents / 100:.2f} (free over "
                f"¥{terms.free_over_cents / 100:.2f}): member "
                f"¥{member_q.unit_price_cents / 100:.2f}"
                f" + delivery ¥{member_q.delivery_fee_cents / 100:.2f}, others "
                f"¥{other_q.unit_price_cents / 100:.2f} + delivery "
                f"¥{other_q.delivery_fee_cents / 100:.2f}"
            )
        return "\n      ".join(lines)
    finally:
        engine.dispose()


def segment_push_and_experiment(settings: Settings) -> str:
    """A tagged segment gets a coupon push (a re-run sends nothing twice); a title A/B test on
    a group-buy campaign: exposures counted in Redis and flushed, paid group orders converting,
    results per arm with the two-proportion test's p-value."""
    from tuanbox.accounts.models import User
    from tuanbox.catalog.models import Merchant, Product, Sku
    from tuanbox.coupons.services import create_template
    from tuanbox.db.base import utcnow
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.experiments import services as experiments
    from tuanbox.experiments.domain import assign
    from tuanbox.experiments.exposure import count_command, flush
    from tuanbox.groupbuy.domain import CampaignKind, Tier
    from tuanbox.groupbuy.services import create_campaign, open_group
    from tuanbox.groupbuy.spec import CampaignSpec
    from tuanbox.segments import pushes
    from tuanbox.segments import services as segments

    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine, settings)
    lines: list[str] = []
    try:
        now = utcnow()
        with session_scope(factory) as s:
            merchant = Merchant(
                name="Demo dairy", licence_number=f"DEMO-{uuid.uuid4().hex[:8]}", verified=True
            )
            s.add(merchant)
            s.flush()
            product = Product(merchant_id=merchant.id, name="Fresh milk 1 L", zone="chilled")
            s.add(product)
            s.flush()
            sku = Sku(product_id=product.id, name="1 L", price_cents=1500, stock_on_hand=500)
            shoppers = [User(role="shopper", display_name=f"demo viewer {i}") for i in range(80)]
            s.add_all([sku, *shoppers])
            s.flush()
            merchant_id, sku_id = merchant.id, sku.id
            viewers = [u.id for u in shoppers]
            for user_id in viewers[:12]:
                segments.tag(s, merchant_id, user_id, "night owls")
            segment = segments.create(
                s, merchant_id, "深夜食堂 night owls", {"kind": "tag", "tag": "night owls"}
            )
            template = create_template(
                s,
                created_by="demo",
                name="深夜食堂 ¥3 off",
                kind="amount_off",
                amount_off_cents=300,
                valid_from=now - timedelta(minutes=1),
                valid_until=now + timedelta(days=7),
                per_user_limit=1,
                stackable=True,
            )
            key = f"demo-night:{segment.id}"
            sent = pushes.send(
                s, settings, merchant_id=merchant_id, segment_id=segment.id, kind="coupon",
                key=key, coupon_template_id=template.id, now=now,
            )  # fmt: skip
            rerun = pushes.send(
                s, settings, merchant_id=merchant_id, segment_id=segment.id, kind="coupon",
                key=key, coupon_template_id=template.id, now=now,
            )  # fmt: skip
            lines.append(
                f"segment '{segment.name}': {segments.count(s, segment)} members; coupon push "
                f"sent {len(sent.sent)}, rate-limited {len(sent.rate_limited)}; "
                f"re-run sent {len(rerun.sent)} (already {rerun.already})"
            )
            campaign = create_campaign(
                s,
                merchant_id=merchant_id,
                actor_id="demo",
                spec=CampaignSpec(
                    sku_id=sku_id, title="Fresh milk", kind=CampaignKind.FIXED,
                    tiers=(Tier(50, 1200),), max_size=50, starts_at=now - timedelta(minutes=1),
                    ends_at=now + timedelta(days=1), group_ttl_s=3600, per_user_limit=2,
                ),
            )  # fmt: skip
            arms = [
                {"key": "a", "weight": 50, "value": "Fresh milk"},
                {"key": "b", "weight": 50, "value": "今早现挤 milked this morning"},
            ]
            experiment = experiments.create(
                s, merchant_id, campaign_id=campaign.id, name="milk title", field="title",
                arms=arms, min_sample=30,
            )  # fmt: skip
            experiment_id, campaign_id = experiment.id, campaign.id
        arm_of = {u: assign(experiment_id, u, arms) for u in viewers}
        prefix = f"{settings.experiments_prefix}demo:{uuid.uuid4().hex}:"
        client = redis.Redis.from_url(settings.redis_url)
        try:
            for user_id in viewers:  # each viewer saw the campaign page once
                client.execute_command(*count_command(prefix, experiment_id, arm_of[user_id]))
            flushed = flush(client, factory, prefix)
        finally:
            for stale in client.scan_iter(match=f"{prefix}*"):
                client.delete(stale)
            client.close()
        # Buyers: more of arm b's viewers start and pay an order than arm a's.
        wanted = {"a": 3, "b": 9}
        buyers = [
            u for arm, n in wanted.items() for u in [v for v in viewers if arm_of[v] == arm][:n]
        ]
        order_ids = []
        with session_scope(factory) as s:
            for user_id in buyers:
                joined = open_group(s, campaign_id=campaign_id, user_id=user_id, now=utcnow())
                order_ids.append(joined.order_id)
        paid = [_pay(factory, settings, order_id) for order_id in order_ids]
        with session_scope(factory) as s:
            experiment = experiments.get(s, merchant_id, experiment_id)
            results = experiments.results(s, experiment)
        lines.append(f"A/B test on the campaign title: {flushed} exposures flushed from Redis, "
                     f"{paid.count('applied')} group orders paid")  # fmt: skip
        for arm in results:
            rate = f"{arm.conversion_rate:.1%}" if arm.conversion_rate is not None else "–"
            test = (
                "control" if arm.test is None else f"z {arm.test.z:.2f}, p {arm.test.p_value:.3f}"
            )
            lines.append(
                f"  arm {arm.key} '{arm.value}': {arm.exposures} exposed, {arm.clicks} clicked, "
                f"{arm.conversions} converted ({rate}); {test}"
                + ("; under minimum sample" if arm.under_sample else "")
            )
        return "\n      ".join(lines)
    finally:
        engine.dispose()
