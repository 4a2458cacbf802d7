"""The Celery entry points run the same durable scans (executed eagerly, on a fresh DB)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa

from tests.conftest import make_settings
from tests.platform.factories import make_order, make_sku
from tuanbox.db.base import utcnow
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.orders.models import Order
from tuanbox.payments.models import Refund
from tuanbox.payments.services import handle_event, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.worker.app import create_celery


def test_expiry_and_refund_tasks(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    celery = create_celery(settings)
    for name in ("tuanbox.orders.tasks", "tuanbox.payments.tasks"):
        importlib.import_module(name)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    sim = SimPay(settings)
    try:
        with factory() as session, session.begin():
            order = make_order(session, sku=make_sku(session, price_cents=700))
            intent = start_checkout(session, order, sim)
            order.pay_deadline = utcnow() - timedelta(seconds=1)
            order_id = order.id
        assert celery.tasks["orders.expire_unpaid"].apply().get() == 1
        with factory() as session, session.begin():
            body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
            assert handle_event(session, sim.verify_webhook(headers, body)) == "refunding"
        assert celery.tasks["payments.process_due_refunds"].apply().get() == {"succeeded": 1}
        assert celery.tasks["idempotency.purge"].apply().get() == 0
        with factory() as session:
            final = session.get(Order, order_id)
            assert final is not None and (final.status, final.refunded_cents) == ("refunded", 700)
            assert session.scalar(sa.select(Refund.status)) == "succeeded"
    finally:
        engine.dispose()
        from tuanbox.worker.db import dispose_all

        dispose_all()
