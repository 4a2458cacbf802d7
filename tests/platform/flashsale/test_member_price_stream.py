"""Flash-sale winners on the stream path are priced by the consumer as of their admission,
from the membership record: through the HTTP admission (one Redis script, nothing added for
members) and `OrderStreamConsumer`, a member pays the SKU's member price where it is below the
sale's and no delivery fee, everyone else the sale price and the fee; the books still add up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import redis
from sqlalchemy import Engine, select

from tests.platform.flashsale.test_order_stream import Sale, stream_settings
from tests.support import wait_until
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_session_factory
from tuanbox.flashsale.models import FlashSale, Reservation
from tuanbox.flashsale.orderstream import OrderStreamConsumer
from tuanbox.membership import services as membership
from tuanbox.membership.models import Membership
from tuanbox.orders.models import Order

pytestmark = pytest.mark.slow


def test_stream_consumer_prices_members_and_charges_others_the_fee(
    fresh_database: Callable[[], str],
    engines: Callable[..., Engine],
    redis_url: str,
) -> None:
    url = fresh_database()
    settings = stream_settings(url, redis_url, delivery_fee_cents=500)
    engine = engines(url)
    sale = Sale(settings, engine, shoppers=3)  # sells at 990
    factory = make_session_factory(engine, settings)
    member, lapsed, other = sale.users
    with factory() as s, s.begin():
        row = s.get(FlashSale, sale.id)
        assert row is not None
        membership.set_member_price(s, row.sku_id, 900, "ops")
        now = utcnow()
        s.add_all(
            [
                Membership(user_id=member, starts_at=now - timedelta(days=1),
                           ends_at=now + timedelta(days=30)),
                Membership(user_id=lapsed, starts_at=now - timedelta(days=40),
                           ends_at=now - timedelta(days=1)),
            ]
        )  # fmt: skip
    client = redis.Redis.from_url(redis_url)
    try:
        assert sale.buy(sale.users) == {"201:": 3}
        consumer = OrderStreamConsumer(client, factory, settings, name="members")

        def written() -> bool:
            consumer.poll(block_ms=50)
            return sale.reservations() == 3

        wait_until(written, 15, "the winners' orders")
        with factory() as s:
            got = {
                user: (unit, fee)
                for user, unit, fee in s.execute(
                    select(Order.user_id, Order.unit_price_cents, Order.delivery_fee_cents)
                    .join(Reservation, Reservation.order_id == Order.id)
                    .where(Reservation.sale_id == sale.id)
                )
            }
        assert got == {member: (900, 0), lapsed: (990, 500), other: (990, 500)}
        sale.check_books(redis_url)
    finally:
        client.close()
        sale.close()
