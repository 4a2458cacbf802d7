"""Races around money: cancel vs payment webhook, and several refund workers at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import make_settings
from tests.platform.factories import make_order, make_sku
from tuanbox.audit.services import Actor
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.errors import ConflictError
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.models import Refund, SimPayRecord
from tuanbox.payments.services import handle_event, process_due_refunds, start_checkout
from tuanbox.payments.simpay import SimPay


def _together(*jobs: Callable[[], None]) -> list[BaseException]:
    barrier = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job: Callable[[], None]) -> None:
        barrier.wait()
        try:
            job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return errors


def _setup(factory: sessionmaker[Session], sim: SimPay, n: int) -> list[tuple[str, str, int]]:
    made = []
    with factory() as session, session.begin():
        sku = make_sku(session, price_cents=1100, stock=n)
        for _ in range(n):
            order = make_order(session, sku=sku)
            intent = start_checkout(session, order, sim)
            made.append((order.id, intent.id, intent.amount_cents))
    return made


def test_cancel_racing_the_payment_webhook_never_loses_money(
    fresh_database: Callable[[], str],
) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url, pool_size=20, max_overflow=0)
    factory = make_session_factory(engine, settings)
    sim = SimPay(settings)
    try:
        cases = _setup(factory, sim, 8)

        def pay(intent_id: str, amount: int) -> Callable[[], None]:
            def job() -> None:
                with factory() as session, session.begin():
                    body, headers = sim.payment_webhook(sim.charge(session, intent_id, amount))
                    handle_event(session, sim.verify_webhook(headers, body))

            return job

        def cancel(order_id: str) -> Callable[[], None]:
            def job() -> None:
                try:
                    with factory() as session, session.begin():
                        transition(
                            session,
                            order_id,
                            "cancelled",
                            actor=Actor("u", "shopper"),
                            reason="race",
                        )
                except ConflictError:
                    pass  # lost to the payment and paid->cancelled is legal, so this is rare

            return job

        jobs = []
        for order_id, intent_id, amount in cases:
            jobs += [pay(intent_id, amount), cancel(order_id)]
        assert _together(*jobs) == []
        while process_due_refunds(factory, lambda _name: sim):
            pass
        with factory() as session:
            for order_id, _intent, _amount in cases:
                order = session.get(Order, order_id)
                assert order is not None
                # Whichever won, the shopper who paid for a cancelled order got it all back.
                assert (order.status, order.paid_cents, order.refunded_cents) == (
                    "refunded",
                    1100,
                    1100,
                )
            ledger = session.scalars(sa.select(SimPayRecord.kind)).all()
            assert sorted(ledger) == ["charge"] * 8 + ["refund"] * 8
    finally:
        engine.dispose()


def test_parallel_refund_workers_pay_each_refund_once(fresh_database: Callable[[], str]) -> None:
    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url, pool_size=20, max_overflow=0)
    factory = make_session_factory(engine, settings)
    sim = SimPay(settings)
    try:
        cases = _setup(factory, sim, 10)
        with factory() as session, session.begin():
            for order_id, intent_id, amount in cases:
                body, headers = sim.payment_webhook(sim.charge(session, intent_id, amount))
                handle_event(session, sim.verify_webhook(headers, body))
                transition(
                    session, order_id, "cancelled", actor=Actor("ops", "ops"), reason="group failed"
                )
        results: list[dict[str, int]] = []
        errors = _together(
            *[lambda: results.append(process_due_refunds(factory, lambda _n: sim))] * 6
        )
        assert errors == []
        assert sum(r.get("succeeded", 0) for r in results) == 10
        with factory() as session:
            assert (
                session.scalar(
                    sa.select(sa.func.count())
                    .select_from(SimPayRecord)
                    .where(SimPayRecord.kind == "refund")
                )
                == 10
            )
            assert set(session.scalars(sa.select(Refund.attempts))) == {1}
    finally:
        engine.dispose()


def test_same_refund_key_from_two_closers_at_once(fresh_database: Callable[[], str]) -> None:
    """Two group closers refund the same member with the same key at the same moment."""
    from tuanbox.payments.services import refund

    url = fresh_database()
    settings = make_settings(database_url=url)
    engine = make_engine(url, pool_size=10, max_overflow=0)
    factory = make_session_factory(engine, settings)
    sim = SimPay(settings)
    try:
        ((order_id, intent_id, amount),) = _setup(factory, sim, 1)
        with factory() as session, session.begin():
            body, headers = sim.payment_webhook(sim.charge(session, intent_id, amount))
            handle_event(session, sim.verify_webhook(headers, body))
        ids: list[str] = []

        def close() -> None:
            with factory() as session, session.begin():
                order = session.get(Order, order_id)
                assert order is not None
                ids.append(
                    refund(session, order, 300, "tier difference", key=f"tier:{order_id}").id
                )

        assert _together(*[close] * 5) == []
        assert len(set(ids)) == 1 and len(ids) == 5
    finally:
        engine.dispose()
