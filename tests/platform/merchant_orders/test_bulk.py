"""Bulk accept / reject: one transaction, a result per order, audited, idempotent on retry."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.platform.factories import make_merchant, make_product, make_sku, make_user
from tests.platform.fulfilment.fx import make_station
from tests.platform.groupbuy.factories import pay
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor
from tuanbox.catalog.models import Merchant
from tuanbox.crypto import PiiCipher
from tuanbox.errors import InvalidInputError
from tuanbox.idempotency.errors import IdempotencyKeyReusedError
from tuanbox.merchant_orders import bulk
from tuanbox.merchant_orders.bulk import BulkAction, Outcome
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.orders.services import create_order
from tuanbox.settings import Settings


def _manual(session: Session) -> Merchant:
    merchant = make_merchant(session)
    merchant.order_acceptance, merchant.acceptance_lapse = "manual", "refund"
    session.flush()
    return merchant


def _paid(session: Session, settings: Settings, merchant: Merchant) -> Order:
    sku = make_sku(session, make_product(session, merchant))
    order = create_order(
        session,
        user_id=make_user(session).id,
        sku_id=sku.id,
        qty=1,
        unit_price_cents=sku.price_cents,
        station_id=make_station(session).id,
    )
    pay(session, settings, order.id)
    session.refresh(order)
    assert (order.status, order.awaiting) == ("paid", "merchant")
    return order


def _transitions(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(OrderTransition)) or 0)


def test_bulk_accept_reports_each_order_and_audits(db_session: Session, settings: Settings) -> None:
    merchant = _manual(db_session)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    actor = Actor(staff.id, staff.role)
    a, b = _paid(db_session, settings, merchant), _paid(db_session, settings, merchant)
    theirs = _paid(db_session, settings, _manual(db_session))
    done = bulk.apply(
        db_session,
        merchant_id=merchant.id,
        action=BulkAction.ACCEPT,
        order_ids=[a.id, theirs.id, b.id, a.id, "no-such-order"],
        actor=actor,
    )
    got = {r.order_id: (r.outcome, r.status) for r in done.results}
    assert got == {
        a.id: (Outcome.DONE, "confirmed"),
        b.id: (Outcome.DONE, "confirmed"),
        theirs.id: (Outcome.NOT_FOUND, None),  # another merchant's reads as missing
        "no-such-order": (Outcome.NOT_FOUND, None),
    }
    db_session.refresh(theirs)
    assert theirs.status == "paid"  # untouched
    audited = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.actor_id == staff.id)
    ).all()
    assert sorted(audited) == ["console.orders.bulk_accept", "order.confirmed", "order.confirmed"]

    before = _transitions(db_session)
    again = bulk.apply(
        db_session, merchant_id=merchant.id, action=BulkAction.ACCEPT, order_ids=[a.id],
        actor=actor,
    )  # fmt: skip
    assert again.results[0].outcome == Outcome.NOT_AWAITING
    assert again.results[0].status == "confirmed"
    assert _transitions(db_session) == before


def test_bulk_reject_needs_a_reason_and_cancels(db_session: Session, settings: Settings) -> None:
    merchant = _manual(db_session)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    actor = Actor(staff.id, staff.role)
    order = _paid(db_session, settings, merchant)
    with pytest.raises(InvalidInputError):
        bulk.apply(
            db_session, merchant_id=merchant.id, action=BulkAction.REJECT, order_ids=[order.id],
            actor=actor,
        )  # fmt: skip
    with pytest.raises(InvalidInputError):
        bulk.apply(
            db_session, merchant_id=merchant.id, action=BulkAction.ACCEPT, order_ids=[" "],
            actor=actor,
        )  # fmt: skip
    done = bulk.apply(
        db_session, merchant_id=merchant.id, action=BulkAction.REJECT, order_ids=[order.id],
        actor=actor, reason="sold out today",
    )  # fmt: skip
    assert done.results[0].outcome == Outcome.DONE
    db_session.refresh(order)
    assert order.status in ("cancelled", "refunded")


def test_a_retried_bulk_with_its_key_answers_the_first_result(
    db_session: Session, settings: Settings
) -> None:
    merchant = _manual(db_session)
    staff = make_user(db_session, "merchant_staff", merchant.id)
    actor = Actor(staff.id, staff.role)
    orders = [_paid(db_session, settings, merchant) for _ in range(3)]
    ids = [o.id for o in orders]
    cipher = PiiCipher(settings)
    first = bulk.apply_once(
        db_session, key="bulk-key-1", merchant_id=merchant.id, action=BulkAction.ACCEPT,
        order_ids=ids, actor=actor, cipher=cipher,
    )  # fmt: skip
    assert not first.replayed and first.done == 3
    before = _transitions(db_session)
    audits = db_session.scalar(select(func.count()).select_from(AuditEntry))
    retry = bulk.apply_once(
        db_session, key="bulk-key-1", merchant_id=merchant.id, action=BulkAction.ACCEPT,
        order_ids=ids, actor=actor, cipher=cipher,
    )  # fmt: skip
    assert retry.replayed and retry.results == first.results
    assert _transitions(db_session) == before
    assert db_session.scalar(select(func.count()).select_from(AuditEntry)) == audits
    with pytest.raises(IdempotencyKeyReusedError):  # the same key for other orders
        bulk.apply_once(
            db_session, key="bulk-key-1", merchant_id=merchant.id, action=BulkAction.ACCEPT,
            order_ids=ids[:1], actor=actor, cipher=cipher,
        )  # fmt: skip
