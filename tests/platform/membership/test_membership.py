"""Paid membership on real PostgreSQL: bought through SimPay (a repeated webhook applies
once), renewal extends from the current end, expiry is recorded once, and a refund returns
exactly the unused whole days pro rata, once, to the cent; member prices and free delivery."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.platform.factories import make_sku, make_user
from tuanbox.db.base import utcnow
from tuanbox.membership import services as membership
from tuanbox.membership.domain import days_left, pro_rata_cents
from tuanbox.membership.errors import NotAMemberError
from tuanbox.membership.models import MembershipEntry, MembershipTerm
from tuanbox.payments.models import SimPayRecord
from tuanbox.payments.services import handle_event
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings


def _buy(session: Session, settings: Settings, user_id: str) -> MembershipTerm:
    sim = SimPay(settings)
    term, url = membership.start_purchase(session, settings, user_id, sim)
    assert url.endswith(term.id)
    body, headers = sim.payment_webhook(sim.charge(session, term.id, term.amount_cents))
    event = sim.verify_webhook(headers, body)
    assert handle_event(session, event) == "applied"
    assert handle_event(session, event) == "duplicate"  # a redelivered webhook
    session.refresh(term)
    return term


def test_purchase_through_simpay_makes_a_member_once(
    db_session: Session, settings: Settings
) -> None:
    shopper = make_user(db_session)
    assert not membership.is_member(db_session, shopper.id)
    term = _buy(db_session, settings, shopper.id)
    assert (term.status, term.amount_cents, term.days) == ("paid", 9900, 365)
    assert membership.is_member(db_session, shopper.id)
    kinds = [(e.kind, e.cents) for e in membership.ledger(db_session, shopper.id)]
    assert kinds == [("paid", 9900)]


def test_renewal_extends_from_the_current_end(db_session: Session, settings: Settings) -> None:
    shopper = make_user(db_session)
    first = _buy(db_session, settings, shopper.id)
    second = _buy(db_session, settings, shopper.id)
    assert second.starts_at == first.ends_at
    assert second.ends_at is not None and first.starts_at is not None
    assert second.ends_at - first.starts_at == timedelta(days=730)
    row = membership.status(db_session, shopper.id)
    assert row is not None and row.ends_at == second.ends_at


def test_expiry_is_recorded_once(db_session: Session, settings: Settings) -> None:
    shopper = make_user(db_session)
    term = _buy(db_session, settings, shopper.id)
    assert term.ends_at is not None
    later = term.ends_at + timedelta(seconds=1)
    assert not membership.is_member(db_session, shopper.id, later)
    assert membership.expire_due(db_session, now=later) >= 1
    assert membership.expire_due(db_session, now=later) == 0
    assert [e.kind for e in membership.ledger(db_session, shopper.id)] == ["paid", "expired"]


@pytest.mark.parametrize("used_days", [0, 1, 100, 364])
def test_refund_is_pro_rata_to_the_cent_and_once(
    db_session: Session, settings: Settings, used_days: int
) -> None:
    shopper = make_user(db_session)
    term = _buy(db_session, settings, shopper.id)
    renewal = _buy(db_session, settings, shopper.id)
    assert term.starts_at is not None
    at = term.starts_at + timedelta(days=used_days, hours=3)  # a started day counts as used
    sim = SimPay(settings)
    done = membership.refund(db_session, shopper.id, sim, now=at)
    left = 365 - used_days - 1
    expected = 9900 * left // 365 + 9900  # the renewal not yet begun comes back whole
    assert done.cents == expected and done.days == left + 365
    records = db_session.scalars(
        select(SimPayRecord).where(
            SimPayRecord.kind == "refund", SimPayRecord.intent_id.in_([term.id, renewal.id])
        )
    ).all()
    paid_back = sorted(c for c in (9900 * left // 365, 9900) if c)  # nothing moves for 0
    assert sorted(r.amount_cents for r in records) == paid_back
    assert not membership.is_member(db_session, shopper.id, at)
    with pytest.raises(NotAMemberError):
        membership.refund(db_session, shopper.id, sim, now=at)
    entries = db_session.scalars(
        select(MembershipEntry).where(MembershipEntry.user_id == shopper.id)
    ).all()
    assert sum(e.cents for e in entries) == 2 * 9900 - expected


def test_pro_rata_never_exceeds_what_was_paid() -> None:
    start = utcnow()
    end = start + timedelta(days=365)
    for cents in (1, 99, 9900, 12345):
        assert pro_rata_cents(cents, 365, days_left(start, start, end)) == cents
        assert pro_rata_cents(cents, 365, days_left(end, start, end)) == 0
        assert pro_rata_cents(cents, 365, 182) == cents * 182 // 365


def test_member_price_and_free_delivery(db_session: Session, settings: Settings) -> None:
    shopper, other = make_user(db_session), make_user(db_session)
    sku = make_sku(db_session, price_cents=2000)
    membership.set_member_price(db_session, sku.id, 1800, "ops")
    _buy(db_session, settings, shopper.id)
    assert membership.price_for(db_session, shopper.id, sku.id, 2000) == 1800
    assert membership.price_for(db_session, other.id, sku.id, 2000) == 2000
    assert membership.delivery_fee_cents(db_session, shopper.id, 500) == 0
    assert membership.delivery_fee_cents(db_session, other.id, 500) == 500
