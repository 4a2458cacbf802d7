"""Membership use cases: buy or renew through the payment port, apply the provider's payment
once, refund pro rata by whole unused days, expire ended terms; every change a ledger row
with a unique key, so retried webhooks, double clicks and reruns change nothing twice.

Lock order: the member's `memberships` row (created empty-windowed first if missing), then
their terms by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.coupons.domain import aware
from tuanbox.db.base import utcnow
from tuanbox.membership import markers
from tuanbox.membership.domain import days_left, pro_rata_cents, term_window
from tuanbox.membership.errors import MembershipPaymentError, NotAMemberError
from tuanbox.membership.models import MemberPrice, Membership, MembershipEntry, MembershipTerm
from tuanbox.payments.provider import PaymentProvider, WebhookEvent
from tuanbox.settings import Settings


def _locked(session: Session, user_id: str, now: datetime) -> Membership:
    row = session.scalars(
        select(Membership)
        .where(Membership.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(Membership(user_id=user_id, starts_at=now, ends_at=now))
            session.flush()
    except IntegrityError:
        pass  # a concurrent first purchase made it; lock theirs
    return session.scalars(
        select(Membership)
        .where(Membership.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def status(session: Session, user_id: str, now: datetime | None = None) -> Membership | None:
    """The member's window while it is open, else None."""
    now = now or utcnow()
    row = session.get(Membership, user_id)
    if row is None or not aware(row.starts_at) <= now < aware(row.ends_at):
        return None
    return row


def is_member(session: Session, user_id: str, now: datetime | None = None) -> bool:
    return status(session, user_id, now) is not None


def start_purchase(
    session: Session,
    settings: Settings,
    user_id: str,
    provider: PaymentProvider,
    *,
    payer_ip: str | None = None,
) -> tuple[MembershipTerm, str]:
    """A pending term at the configured price and its checkout URL; a pending one at the same
    price is reused (a double click pays once)."""
    term = session.scalars(
        select(MembershipTerm).where(
            MembershipTerm.user_id == user_id,
            MembershipTerm.status == "pending",
            MembershipTerm.provider == provider.name,
            MembershipTerm.amount_cents == settings.membership_price_cents,
            MembershipTerm.days == settings.membership_days,
        )
    ).first()
    if term is None:
        term = MembershipTerm(
            user_id=user_id,
            provider=provider.name,
            amount_cents=settings.membership_price_cents,
            days=settings.membership_days,
        )
        session.add(term)
        session.flush()
    url = provider.create_checkout(session, term.id, term.amount_cents, payer_ip=payer_ip)
    return term, url


def payment_succeeded(
    session: Session, event: WebhookEvent, now: datetime | None = None
) -> str | None:
    """A provider's payment for a membership term: the term starts (at the current end when
    renewing). None when the intent is not a membership term (payments handles its own)."""
    now = now or utcnow()
    term = session.get(MembershipTerm, event.intent_id) if event.intent_id else None
    if term is None:
        return None
    if term.provider != event.provider or event.amount_cents != term.amount_cents:
        raise MembershipPaymentError("payment does not match the membership term", term_id=term.id)
    membership = _locked(session, term.user_id, now)
    session.refresh(term, with_for_update=True)
    if term.status != "pending":
        return "duplicate"
    current = aware(membership.ends_at) if status(session, term.user_id, now) else None
    start, end = term_window(now, current, term.days)
    term.status, term.txn_id, term.starts_at, term.ends_at = "paid", event.txn_id, start, end
    if current is None:
        membership.starts_at = start
    membership.ends_at = end
    session.add(
        MembershipEntry(
            key=f"paid:{term.id}",
            user_id=term.user_id,
            term_id=term.id,
            kind="paid",
            cents=term.amount_cents,
            days=term.days,
            at=now,
        )
    )
    session.flush()
    markers.publish_after_commit(session, term.user_id, end)
    return "applied"


@dataclass(frozen=True)
class Refunded:
    cents: int
    days: int
    terms: tuple[str, ...]


def _refund_of(term: MembershipTerm, now: datetime) -> tuple[int, int]:
    """(unused whole days, cents back) of one paid term at `now`."""
    assert term.starts_at is not None and term.ends_at is not None
    left = days_left(now, aware(term.starts_at), aware(term.ends_at))
    return left, pro_rata_cents(term.amount_cents, term.days, left)


def refund_quote(session: Session, user_id: str, *, now: datetime | None = None) -> Refunded:
    """What `refund` would give back at `now` (nothing locked or written): shown to ops
    before they confirm. Terms with no day left are not in it; none at all is cents 0."""
    now = now or utcnow()
    terms = session.scalars(
        select(MembershipTerm)
        .where(MembershipTerm.user_id == user_id, MembershipTerm.status == "paid")
        .order_by(MembershipTerm.id)
    ).all()
    cents = days = 0
    ids = []
    for term in terms:
        if aware(term.ends_at) <= now:  # type: ignore[arg-type]
            continue
        left, amount = _refund_of(term, now)
        cents, days = cents + amount, days + left
        ids.append(term.id)
    return Refunded(cents, days, tuple(ids))


def refund(
    session: Session, user_id: str, provider: PaymentProvider, *, now: datetime | None = None
) -> Refunded:
    """End the membership now and give back each paid term's unused whole days, pro rata to
    the cent; a term not yet begun (a renewal) comes back in full. Once per term."""
    now = now or utcnow()
    membership = _locked(session, user_id, now)
    terms = session.scalars(
        select(MembershipTerm)
        .where(MembershipTerm.user_id == user_id, MembershipTerm.status == "paid")
        .order_by(MembershipTerm.id)
        .with_for_update()
    ).all()
    open_terms = [t for t in terms if aware(t.ends_at) > now]  # type: ignore[arg-type]
    if not open_terms:
        raise NotAMemberError("no paid membership days left to refund")
    cents = days = 0
    for term in open_terms:
        left, amount = _refund_of(term, now)
        if amount > 0:
            term.provider_refund_id = provider.refund(
                session,
                refund_id=f"membership-refund:{term.id}",
                intent_id=term.id,
                amount_cents=amount,
            )
        term.status, term.refunded_cents = "refunded", amount
        session.add(
            MembershipEntry(
                key=f"refund:{term.id}",
                user_id=user_id,
                term_id=term.id,
                kind="refund",
                cents=-amount,
                days=-left,
                at=now,
            )
        )
        cents, days = cents + amount, days + left
    membership.ends_at = max(aware(membership.starts_at), now)
    session.flush()
    markers.publish_after_commit(session, user_id, membership.ends_at)
    return Refunded(cents, days, tuple(t.id for t in open_terms))


def expire_due(session: Session, *, now: datetime | None = None, batch: int = 500) -> int:
    """Terms that ended are marked expired, with a ledger row each (the window already closed
    at its end; this records it). Safe to rerun; returns how many expired."""
    now = now or utcnow()
    terms = session.scalars(
        select(MembershipTerm)
        .where(MembershipTerm.status == "paid", MembershipTerm.ends_at <= now)
        .order_by(MembershipTerm.ends_at, MembershipTerm.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    for term in terms:
        term.status = "expired"
        session.add(
            MembershipEntry(
                key=f"expired:{term.id}",
                user_id=term.user_id,
                term_id=term.id,
                kind="expired",
                cents=0,
                days=0,
                at=now,
            )
        )
    session.flush()
    return len(terms)


def ledger(session: Session, user_id: str) -> list[MembershipEntry]:
    return list(
        session.scalars(
            select(MembershipEntry)
            .where(MembershipEntry.user_id == user_id)
            .order_by(MembershipEntry.id)
        )
    )


def set_member_price(session: Session, sku_id: str, price_cents: int, actor_id: str) -> MemberPrice:
    row = session.get(MemberPrice, sku_id)
    if row is None:
        row = MemberPrice(sku_id=sku_id, price_cents=price_cents, updated_by=actor_id)
        session.add(row)
    row.price_cents, row.updated_by = price_cents, actor_id
    session.flush()
    return row


def clear_member_price(session: Session, sku_id: str) -> int | None:
    """Members pay the SKU's own price again; returns the member price it had (None: none)."""
    row = session.get(MemberPrice, sku_id)
    if row is None:
        return None
    before = row.price_cents
    session.delete(row)
    session.flush()
    return before


def price_for(
    session: Session, user_id: str, sku_id: str, list_price_cents: int, now: datetime | None = None
) -> int:
    """What this shopper pays for one unit: the member price while a member, if lower."""
    row = session.get(MemberPrice, sku_id)
    if row is None or row.price_cents >= list_price_cents or not is_member(session, user_id, now):
        return list_price_cents
    return row.price_cents


def delivery_fee_cents(
    session: Session, user_id: str, fee_cents: int, now: datetime | None = None
) -> int:
    """Members' delivery is free."""
    return 0 if is_member(session, user_id, now) else fee_cents
