"""Member pricing under concurrency, on real PostgreSQL with one connection per thread: a
member's orders created while ops refund the membership are each priced whole, as a member
(member price, no fee) or not (list price and fee), never a mix; once the refund committed,
every order is priced in full."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.coupons.test_races import together
from tests.platform.groupbuy.factories import make_shop, make_shoppers
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.membership import services as membership
from tuanbox.membership.pricing import DeliveryTerms, price_order
from tuanbox.orders.services import create_order
from tuanbox.payments.services import handle_event
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

DELIVERY = DeliveryTerms(500, 0)


@pytest.fixture
def world(fresh_database: Callable[[], str]) -> Iterator[tuple[sessionmaker[Session], Settings]]:
    url = fresh_database()
    engine = make_engine(url, pool_size=20, max_overflow=0)
    settings = make_settings(database_url=url)
    try:
        yield make_session_factory(engine, settings), settings
    finally:
        engine.dispose()


def _order(factory: sessionmaker[Session], sku_id: str, user_id: str) -> tuple[int, int]:
    with factory() as session, session.begin():
        priced = price_order(
            session, user_id=user_id, sku_id=sku_id, offer_cents=2000, qty=1, delivery=DELIVERY
        )
        order = create_order(
            session,
            user_id=user_id,
            sku_id=sku_id,
            qty=1,
            unit_price_cents=priced.unit_price_cents,
            delivery_fee_cents=priced.delivery_fee_cents,
        )
        return order.unit_price_cents, order.delivery_fee_cents


def test_orders_racing_a_membership_refund_are_priced_whole(
    world: tuple[sessionmaker[Session], Settings],
) -> None:
    factory, settings = world
    sim = SimPay(settings)
    with factory() as session, session.begin():
        shop = make_shop(session, price_cents=2000)
        membership.set_member_price(session, shop.sku_id, 1800, "ops")
        (user,) = make_shoppers(session, 1)
        term, _url = membership.start_purchase(session, settings, user, sim)
        body, headers = sim.payment_webhook(sim.charge(session, term.id, term.amount_cents))
        assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"

    def refund() -> object:
        with factory() as session, session.begin():
            return membership.refund(session, user, sim)

    jobs: list[Callable[[], object]] = [
        lambda: _order(factory, shop.sku_id, user) for _ in range(8)
    ]
    results, errors = together([*jobs, refund])
    assert errors == []
    priced = [r for r in results if isinstance(r, tuple)]
    assert len(priced) == 8
    assert set(priced) <= {(1800, 0), (2000, 500)}
    assert _order(factory, shop.sku_id, user) == (2000, 500)
