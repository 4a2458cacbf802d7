"""Member prices and the delivery fee on every order kind, on real PostgreSQL: a member pays
min(offer, member price) and no fee, anyone else the offer plus the fee unless the goods
reach the free-delivery threshold; an expired member pays in full; the price is decided once
(a flash winner as of admission, even when the stream writes the order later); refunds give
back exactly what was paid, the fee with a full refund or with the last unit."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tests.platform.coupons.support import pay_out, template
from tests.platform.groupbuy.factories import (
    auth,
    fixed_spec,
    make_shop,
    make_shoppers,
    pay,
    tiered_spec,
)
from tuanbox.coupons import checkout
from tuanbox.coupons.services import issue_one
from tuanbox.coupons.settlement import refund_units
from tuanbox.db.base import utcnow
from tuanbox.flashsale import services as flash
from tuanbox.flashsale.orderstream import Queued, write_batch
from tuanbox.groupbuy import services as groupbuy
from tuanbox.groupbuy.closing import close_group
from tuanbox.membership import services as membership
from tuanbox.membership.domain import delivery_fee_cents, member_unit_cents
from tuanbox.membership.models import Membership
from tuanbox.membership.pricing import DeliveryTerms, price_order
from tuanbox.orders.models import Order
from tuanbox.orders.services import create_order
from tuanbox.payments.models import Refund
from tuanbox.payments.services import start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

FEE, FREE_OVER = 500, 5000
DELIVERY = DeliveryTerms(FEE, FREE_OVER)
POLICY = checkout.Policy(cents_per_point=1, max_points_share_pct=50)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url=database_url,
        rate_limit_prefix=f"test:{uuid.uuid4().hex}:",
        media_dir=str(tmp_path / "media"),
        delivery_fee_cents=FEE,
        free_delivery_over_cents=FREE_OVER,
    )


def _member(session: Session, user_id: str, *, days: int = 30, ago: int = 1) -> None:
    now = utcnow()
    session.add(
        Membership(
            user_id=user_id,
            starts_at=now - timedelta(days=ago),
            ends_at=now + timedelta(days=days),
        )
    )
    session.flush()


def _paid_out(session: Session, settings: Settings, order: Order) -> int:
    """Pay every refund owed on the order; what it got back in all."""
    for row in session.scalars(select(Refund).where(Refund.order_id == order.id)):
        if row.status == "pending":
            pay_out(session, settings, row)
    session.refresh(order)
    return order.refunded_cents


def test_rules_are_pure_and_the_lower_price_wins() -> None:
    assert member_unit_cents(900, 800, True) == 800
    assert member_unit_cents(700, 800, True) == 700  # a group tier already lower wins
    assert member_unit_cents(900, 800, False) == 900
    assert member_unit_cents(900, None, True) == 900
    assert delivery_fee_cents(500, 5000, 4999, False) == 500
    assert delivery_fee_cents(500, 5000, 5000, False) == 0  # 满¥50免配送费
    assert delivery_fee_cents(500, 0, 10**9, False) == 500  # no threshold
    assert delivery_fee_cents(500, 5000, 100, True) == 0  # members never pay it
    assert delivery_fee_cents(0, 0, 100, False) == 0


def test_regular_order_member_price_and_fee_through_the_api(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session, price_cents=2000)
    membership.set_member_price(db_session, shop.sku_id, 1800, "ops")
    member, other, lapsed = make_shoppers(db_session, 3)
    _member(db_session, member)
    _member(db_session, lapsed, days=-1, ago=40)  # ended yesterday: pays in full

    def buy(user_id: str, qty: int) -> dict[str, int]:
        r = client.post(
            "/api/v1/orders",
            json={"sku_id": shop.sku_id, "qty": qty},
            headers={**auth(settings, user_id), "Idempotency-Key": uuid.uuid4().hex},
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    got = buy(member, 1)
    assert (got["unit_price_cents"], got["delivery_fee_cents"], got["due_cents"]) == (1800, 0, 1800)
    got = buy(other, 1)
    assert (got["unit_price_cents"], got["delivery_fee_cents"], got["due_cents"]) == (
        2000,
        FEE,
        2500,
    )
    got = buy(lapsed, 1)
    assert (got["unit_price_cents"], got["delivery_fee_cents"]) == (2000, FEE)
    got = buy(other, 3)  # ¥60 of goods: over the threshold, delivered free
    assert (got["total_cents"], got["delivery_fee_cents"], got["due_cents"]) == (6000, 0, 6000)

    # What is paid is goods + fee, and a cancelled paid order gives all of it back.
    order = db_session.get(Order, buy(other, 1)["id"])
    assert order is not None
    assert pay(db_session, settings, order.id) == "applied"
    db_session.refresh(order)
    assert order.paid_cents == 2500
    r = client.post(
        f"/api/v1/orders/{order.id}/cancel", json={"reason": "changed my mind"},
        headers=auth(settings, other),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert _paid_out(db_session, settings, order) == 2500
    db_session.refresh(order)
    assert order.status == "refunded"


def test_expiry_mid_way_keeps_what_was_ordered_and_prices_the_next_in_full(
    db_session: Session,
) -> None:
    shop = make_shop(db_session, price_cents=2000)
    membership.set_member_price(db_session, shop.sku_id, 1800, "ops")
    (user,) = make_shoppers(db_session, 1)
    _member(db_session, user, days=1)
    before = price_order(
        db_session, user_id=user, sku_id=shop.sku_id, offer_cents=2000, qty=1, delivery=DELIVERY
    )
    assert (before.unit_price_cents, before.delivery_fee_cents, before.member) == (1800, 0, True)
    later = utcnow() + timedelta(days=2)
    after = price_order(
        db_session,
        user_id=user,
        sku_id=shop.sku_id,
        offer_cents=2000,
        qty=1,
        delivery=DELIVERY,
        now=later,
    )
    assert (after.unit_price_cents, after.delivery_fee_cents, after.member) == (2000, FEE, False)


def test_group_join_member_price_fee_and_closing_refunds(
    db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session, price_cents=1200)
    # Tiers 3 → 900, 5 → 800, 10 → 700; members pay at most 850.
    membership.set_member_price(db_session, shop.sku_id, 850, "ops")
    users = make_shoppers(db_session, 5)
    member = users[1]
    _member(db_session, member)
    campaign = groupbuy.create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=tiered_spec(shop.sku_id),
    )
    now = utcnow()
    first = groupbuy.open_group(
        db_session, campaign_id=campaign.id, user_id=users[0], now=now, delivery=DELIVERY
    )
    joined = [first] + [
        groupbuy.join_group(
            db_session, group_id=first.group.id, user_id=u, now=now, delivery=DELIVERY
        )
        for u in users[1:]
    ]
    assert [j.unit_price_cents for j in joined] == [900, 850, 900, 900, 800]
    orders = [db_session.get(Order, j.order_id) for j in joined]
    assert [o.delivery_fee_cents for o in orders if o] == [FEE, 0, FEE, FEE, FEE]
    for j in joined:
        assert pay(db_session, settings, j.order_id) == "applied"
    assert [o.paid_cents for o in orders if o] == [1400, 850, 1400, 1400, 1300]
    db_session.refresh(first.group)
    closed = close_group(db_session, first.group, first.group.deadline_at + timedelta(seconds=1))
    # Reached the 800 tier: everyone owes 800 a unit (below the member price too) and the
    # fee stays owed; only the goods' difference comes back.
    assert closed.unit_price_cents == 800
    assert [closed.refunds.get(j.order_id, 0) for j in joined] == [100, 50, 100, 100, 0]
    for order in orders:
        assert order is not None
        _paid_out(db_session, settings, order)
        assert order.paid_cents - order.refunded_cents == 800 + order.delivery_fee_cents


def test_failed_group_refunds_the_fee_with_the_goods(
    db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session, price_cents=1200)
    users = make_shoppers(db_session, 2)
    campaign = groupbuy.create_campaign(
        db_session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=fixed_spec(shop.sku_id, members=5, price_cents=800),
    )
    opened = groupbuy.open_group(
        db_session, campaign_id=campaign.id, user_id=users[0], now=utcnow(), delivery=DELIVERY
    )
    assert pay(db_session, settings, opened.order_id) == "applied"
    order = db_session.get(Order, opened.order_id)
    assert order is not None and order.paid_cents == 800 + FEE
    db_session.refresh(opened.group)
    closed = close_group(db_session, opened.group, opened.group.deadline_at + timedelta(seconds=1))
    assert closed.status == "failed"
    assert _paid_out(db_session, settings, order) == 800 + FEE


def _sale(session: Session, *, price: int, member_price: int | None) -> flash.SaleTerms:
    shop = make_shop(session, price_cents=3000)
    if member_price is not None:
        membership.set_member_price(session, shop.sku_id, member_price, "ops")
    now = utcnow()
    sale = flash.create_sale(
        session,
        merchant_id=shop.merchant_id,
        actor_id=shop.staff_id,
        spec=flash.SaleSpec(
            sku_id=shop.sku_id,
            title="durian",
            price_cents=price,
            stock_cap=10,
            per_user_limit=2,
            starts_at=now - timedelta(minutes=1),
            ends_at=now + timedelta(hours=1),
        ),
    )
    return flash.TermsCache(ttl_s=0).get(session, sale.id)


def _queued(sale: flash.SaleTerms, user_id: str, at: datetime, qty: int = 1) -> Queued:
    return Queued(
        entry_id="0-1",
        sale_id=sale.id,
        request_id=uuid.uuid4().hex,
        user_id=user_id,
        qty=qty,
        reservation_id=str(uuid.uuid4()),
        order_id=str(uuid.uuid4()),
        station_id=None,
        at=int(at.timestamp()),
    )


def test_flash_stream_writes_price_each_winner_as_of_admission(db_session: Session) -> None:
    # A member price below the sale's (unusual, but then the member pays it).
    sale = _sale(db_session, price=1500, member_price=1200)
    assert sale.member_price_cents == 1200
    member, other, ending = make_shoppers(db_session, 3)
    _member(db_session, member)
    now = utcnow()
    db_session.add(
        Membership(
            user_id=ending, starts_at=now - timedelta(days=9), ends_at=now + timedelta(minutes=5)
        )
    )
    db_session.flush()
    entries = [
        _queued(sale, member, now),
        _queued(sale, other, now),
        # Admitted while a member, written after the membership ended: still the member's.
        _queued(sale, ending, now + timedelta(minutes=4)),
    ]
    # The consumer writes them later; the record decides as of each admission.
    done = write_batch(db_session, entries, pay_timeout_s=600, delivery=DELIVERY)
    assert done.written == 3
    got = {
        o.user_id: (o.unit_price_cents, o.delivery_fee_cents)
        for o in (db_session.get(Order, e.order_id) for e in entries)
        if o
    }
    assert got == {member: (1200, 0), other: (1500, FEE), ending: (1200, 0)}
    # Admitted after it ended: full price and the fee.
    late = _queued(sale, ending, now + timedelta(minutes=6))
    write_batch(db_session, [late], pay_timeout_s=600, delivery=DELIVERY)
    order = db_session.get(Order, late.order_id)
    assert order is not None
    assert (order.unit_price_cents, order.delivery_fee_cents) == (1500, FEE)


def test_flash_price_below_the_member_price_wins_and_request_path_prices_too(
    db_session: Session,
) -> None:
    sale = _sale(db_session, price=990, member_price=1800)
    assert sale.member_price_cents is None  # the flash price is lower: nothing to read
    member, other = make_shoppers(db_session, 2)
    _member(db_session, member)
    for user_id, fee in ((member, 0), (other, FEE)):
        reserved = flash.write_reservation(
            db_session,
            sale,
            user_id=user_id,
            request_id=uuid.uuid4().hex,
            qty=1,
            pay_timeout_s=600,
            delivery=DELIVERY,
        )
        order = db_session.get(Order, reserved.order_id)
        assert order is not None
        assert (order.unit_price_cents, order.delivery_fee_cents) == (990, fee)


def test_refund_by_units_returns_the_fee_with_the_last_unit_exactly(
    db_session: Session, settings: Settings
) -> None:
    shop = make_shop(db_session, price_cents=1000)
    (user,) = make_shoppers(db_session, 1)
    order = create_order(
        db_session,
        user_id=user,
        sku_id=shop.sku_id,
        qty=3,
        unit_price_cents=1000,
        delivery_fee_cents=FEE,
    )
    coupon = issue_one(db_session, template(db_session, amount_off_cents=500).id, user, "k")
    checkout.apply(db_session, order.id, user, [coupon.id], 0, POLICY)
    assert order.due_cents == 3000 - 500 + FEE
    assert pay(db_session, settings, order.id) == "applied"
    db_session.refresh(order)
    assert order.paid_cents == 3000
    lines = checkout.lines_of(db_session, order.id)
    one = refund_units(db_session, order.id, 1, reason="bruised", key="u1")
    assert one.amount_cents == 1000 - lines[-1].coupon_cents  # goods only
    two = refund_units(db_session, order.id, 2, reason="the rest", key="u2")
    assert one.amount_cents + two.amount_cents == order.paid_cents  # the fee came with them
    pay_out(db_session, settings, one)
    pay_out(db_session, settings, two)
    db_session.refresh(order)
    assert order.refunded_cents == order.paid_cents == 3000


def test_no_fee_configured_changes_nothing(db_session: Session) -> None:
    shop = make_shop(db_session, price_cents=1000)
    (user,) = make_shoppers(db_session, 1)
    priced = price_order(
        db_session, user_id=user, sku_id=shop.sku_id, offer_cents=1000, qty=1,
        delivery=DeliveryTerms(),
    )  # fmt: skip
    assert (priced.unit_price_cents, priced.delivery_fee_cents, priced.member) == (1000, 0, False)


def test_checkout_asks_for_the_goods_and_the_fee(db_session: Session, settings: Settings) -> None:
    """The fee is part of what payments take: an intent for the goods alone would not pay."""
    shop = make_shop(db_session, price_cents=1000)
    (user,) = make_shoppers(db_session, 1)
    order = create_order(
        db_session, user_id=user, sku_id=shop.sku_id, qty=1, unit_price_cents=1000,
        delivery_fee_cents=FEE,
    )  # fmt: skip
    intent = start_checkout(db_session, order, SimPay(settings))
    assert intent.amount_cents == 1000 + FEE
    assert pay(db_session, settings, order.id) == "applied"
    db_session.refresh(order)
    assert order.status in ("paid", "confirmed") and order.paid_cents == 1000 + FEE
