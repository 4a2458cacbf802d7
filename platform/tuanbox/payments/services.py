"""Payment use cases: checkout, applying webhooks in any order, refunds that never double."""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.audit.services import Actor
from tuanbox.db.base import utcnow
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.models import Order
from tuanbox.orders.services import lock_order, transition
from tuanbox.payments import alerts
from tuanbox.payments.errors import (
    NotPayableError,
    ProviderError,
    RefundExceedsPaidError,
    RefundKeyConflictError,
    UnknownIntentError,
    UnknownProviderError,
)
from tuanbox.payments.models import Payment, PaymentIntent, Refund
from tuanbox.payments.provider import PaymentProvider, WebhookEvent

log = logging.getLogger("tuanbox.payments")

# Attempts before a refund fails for good, where callers pass no setting (the demo, tests).
DEFAULT_MAX_ATTEMPTS = 20

# Once every refund of an order in one of these statuses has succeeded, the order is refunded.
_REFUND_CLOSES = frozenset(
    {OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.RETURNED, OrderStatus.PAID}
)


def start_checkout(
    session: Session, order: Order, provider: PaymentProvider, *, payer_ip: str | None = None
) -> PaymentIntent:
    """An intent to pay what the order still owes; a pending one for that amount is reused.

    A reused intent asks the provider again for its page: a gateway's link expires (WeChat's
    H5 link after five minutes) while the provider's order behind it, same number, does not.
    """
    order = lock_order(session, order.id)
    if order.status != OrderStatus.PENDING_PAYMENT:
        raise NotPayableError(f"order is {order.status}, not awaiting payment")
    due = order.due_cents - applied_cents(session, order.id)
    if due <= 0:
        raise NotPayableError("nothing left to pay")
    existing = session.scalars(
        select(PaymentIntent).where(
            PaymentIntent.order_id == order.id,
            PaymentIntent.provider == provider.name,
            PaymentIntent.status == "pending",
            PaymentIntent.amount_cents == due,
        )
    ).first()
    intent = existing or PaymentIntent(order_id=order.id, provider=provider.name, amount_cents=due)
    if existing is None:
        session.add(intent)
        session.flush()
    intent.checkout_url = provider.create_checkout(session, intent.id, due, payer_ip=payer_ip)
    return intent


def handle_event(session: Session, event: WebhookEvent) -> str:
    """Apply a verified webhook; safe to repeat and in any order. Returns what happened."""
    if event.type == "payment.succeeded":
        return _payment_succeeded(session, event)
    if event.type == "payment.failed":
        return _payment_failed(session, event)
    if event.type == "refund.succeeded":
        return _refund_confirmed(session, event)
    if event.type == "refund.failed":
        return _refund_failed_at_provider(session, event)
    log.info("ignoring webhook type %s from %s", event.type, event.provider)
    return "ignored"


def _payment_succeeded(session: Session, event: WebhookEvent) -> str:
    assert event.txn_id and event.intent_id
    intent = session.get(PaymentIntent, event.intent_id)
    if intent is None:
        # A membership term is paid through the same port (`tuanbox.membership`).
        from tuanbox.membership.services import payment_succeeded as membership_paid

        handled = membership_paid(session, event)
        if handled is not None:
            return handled
    if intent is None or intent.provider != event.provider:
        raise UnknownIntentError(f"no payment intent {event.intent_id}")
    # Lock the order before inserting, so a concurrent expiry or duplicate waits for us.
    order = lock_order(session, intent.order_id)
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    inserted = session.execute(
        ins(Payment)
        .values(
            id=str(uuid.uuid4()),
            provider=event.provider,
            provider_txn_id=event.txn_id,
            intent_id=intent.id,
            order_id=order.id,
            amount_cents=event.amount_cents,
            disposition="applied",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["provider", "provider_txn_id"])
        .returning(Payment.id)
    ).scalar_one_or_none()
    if inserted is None:
        return "duplicate"
    # Money returned or owed back (a wrong amount, say) never counts towards what is due.
    due = order.due_cents
    due -= applied_cents(session, order.id, excluding=inserted)
    order.paid_cents += event.amount_cents
    provider_actor = Actor(id=f"provider:{event.provider}", role="system")
    if order.status == OrderStatus.PENDING_PAYMENT and event.amount_cents == due:
        intent.status = "succeeded"
        # Before the order is paid (and maybe confirmed at once): risk control may hold it.
        from tuanbox.risk.services import payment_succeeded

        payment_succeeded(session, order, provider=event.provider, payer_id=event.payer_id)
        transition(
            session, order, OrderStatus.PAID, actor=provider_actor, reason=f"paid {event.txn_id}"
        )
        return "applied"
    # Late (after cancel/expiry), a second payment, or a wrong amount: give it back.
    payment = session.get(Payment, inserted)
    assert payment is not None
    payment.disposition = "refunding"
    refund(
        session,
        order,
        event.amount_cents,
        reason=f"unapplied payment while order {order.status}",
        key=f"unapplied-payment:{event.provider}:{event.txn_id}",
        payment_id=payment.id,
    )
    return "refunding"


def _payment_failed(session: Session, event: WebhookEvent) -> str:
    """An attempt to pay was declined: nothing changes hands; risk control counts it."""
    from tuanbox.risk.services import payment_failed

    intent = session.get(PaymentIntent, event.intent_id) if event.intent_id else None
    if intent is None or intent.provider != event.provider or not event.txn_id:
        raise UnknownIntentError(f"no payment intent {event.intent_id}")
    order = session.get(Order, intent.order_id)
    assert order is not None  # FK
    return payment_failed(session, order, provider=event.provider, ref=event.txn_id)


def _refund_confirmed(session: Session, event: WebhookEvent) -> str:
    assert event.refund_id
    row = session.scalars(
        select(Refund).where(Refund.id == event.refund_id).with_for_update()
    ).one_or_none()
    if row is None:
        # Not ours or not committed yet; our own retry loop will learn the outcome anyway.
        return "ignored"
    if row.status == "succeeded":
        return "duplicate"
    if row.status == "resolved":
        # Ops paid it another way, and now the provider paid too: someone must claw it back.
        alerts.refund_alert_once(
            session,
            row,
            "refund_paid_twice",
            f"refund {row.id} was resolved by hand, then {event.provider} paid it as well "
            f"({event.provider_refund_id})",
            "Contact the shopper about the double refund; record the outcome on the alert.",
        )
        return "duplicate"
    if row.status == "failed":
        order = lock_order(session, row.order_id)
        if order.refunded_cents + row.amount_cents > order.paid_cents:
            # It had failed for good and the money was refunded another way meanwhile; the
            # books cannot count it twice, so the row keeps `failed` and ops claw one back.
            row.provider_refund_id = event.provider_refund_id
            row.last_error = f"{event.provider} paid it after all, on top of another refund"
            alerts.refund_alert_once(
                session,
                row,
                "refund_paid_twice",
                f"refund {row.id} had failed for good, then {event.provider} paid it after all "
                f"({event.provider_refund_id}); the order was already refunded another way",
                "Contact the shopper about the double refund; record the outcome on the alert.",
            )
            return "alerted"
    mark_paid(session, row, provider_refund_id=event.provider_refund_id or "")
    return "applied"


def _refund_failed_at_provider(session: Session, event: WebhookEvent) -> str:
    """The provider gave up on a refund it had accepted (WeChat: closed or abnormal)."""
    row = session.get(Refund, event.refund_id) if event.refund_id else None
    if row is None:
        return "ignored"
    alerts.refund_alert_once(
        session,
        row,
        "refund_abnormal",
        f"{event.provider} reports refund {row.id} of {row.amount_cents} cents as "
        f"{event.raw.get('refund_status', 'failed')}; the shopper has not received it",
        f"Resolve it in {event.provider}'s merchant console (abnormal refund: pay to the "
        f"shopper's bank card) or pay the shopper another way; note it on the alert.",
    )
    return "alerted"


def applied_cents(session: Session, order_id: str, *, excluding: str | None = None) -> int:
    """What the order's payments count for (payments being refunded do not count)."""
    query = select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
        Payment.order_id == order_id, Payment.disposition == "applied"
    )
    if excluding is not None:
        query = query.where(Payment.id != excluding)
    return int(session.scalar(query) or 0)


def refundable_cents(session: Session, order: Order) -> int:
    owed = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0)).where(
            Refund.order_id == order.id, Refund.status != "failed"
        )
    )
    return order.paid_cents - int(owed or 0)


def refund(
    session: Session,
    order: Order,
    amount_cents: int,
    reason: str,
    key: str,
    *,
    payment_id: str | None = None,
) -> Refund:
    """Owe the shopper `amount_cents`; the same `key` always returns the same refund.

    The money moves later, in `process_refund`, retried until the provider confirms. The
    key makes this safe to call from retried jobs (a failed group closing twice, say).
    """
    # The order lock comes first: two callers with the same key then meet here one by one.
    order = lock_order(session, order.id)
    existing = session.scalars(select(Refund).where(Refund.key == key)).one_or_none()
    if existing is not None:
        if existing.order_id != order.id or existing.amount_cents != amount_cents:
            raise RefundKeyConflictError("refund key already used for another refund", key=key)
        return existing
    if amount_cents <= 0:
        raise RefundExceedsPaidError("refund amount must be positive")
    available = refundable_cents(session, order)
    if amount_cents > available:
        raise RefundExceedsPaidError(
            f"refund of {amount_cents} exceeds the {available} cents still refundable",
            order_id=order.id,
        )
    provider = session.scalars(
        select(PaymentIntent.provider).where(PaymentIntent.order_id == order.id)
    ).first()
    row = Refund(
        key=key,
        order_id=order.id,
        payment_id=payment_id,
        provider=provider or "sim",
        amount_cents=amount_cents,
        reason=reason,
        next_attempt_at=utcnow(),
    )
    session.add(row)
    session.flush()
    log.info("refund %s owed: %d cents on order %s (%s)", row.id, amount_cents, order.id, reason)
    return row


def _backoff(settings_base: float, settings_max: float, attempts: int) -> float:
    delay = min(settings_max, settings_base * 2 ** max(0, attempts - 1))
    return delay * (0.8 + 0.4 * random.random())  # jitter spreads retries of many refunds


def process_refund(
    session: Session,
    refund_id: str,
    provider: PaymentProvider,
    *,
    base_s: float = 5.0,
    max_s: float = 600.0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: datetime | None = None,
) -> str:
    """One attempt at paying a pending refund.

    Returns "succeeded" (this call paid it), "pending" (the provider failed; retried later),
    "failed" (the provider failed `max_attempts` times: no more retries, ops are alerted),
    "busy" (another worker holds it) or "done" (it was already finished).

    The provider call carries our refund id as its idempotency key, so an attempt whose
    outcome we lost (crash after the call) is repeated without paying twice.
    """
    row = session.scalars(
        select(Refund).where(Refund.id == refund_id).with_for_update(skip_locked=True)
    ).one_or_none()
    if row is None:
        return "busy"
    if row.status != "pending":
        return "done"
    intent_id = _intent_of(session, row)
    row.attempts += 1
    try:
        provider_refund_id = provider.refund(
            session, refund_id=row.id, intent_id=intent_id or "", amount_cents=row.amount_cents
        )
    except ProviderError as exc:
        row.last_error = str(exc)[:500]
        if row.attempts >= max_attempts:
            _fail_for_good(session, row)
            return "failed"
        row.next_attempt_at = (now or utcnow()) + timedelta(
            seconds=_backoff(base_s, max_s, row.attempts)
        )
        log.warning("refund %s attempt %d failed: %s", row.id, row.attempts, exc)
        return "pending"
    mark_paid(session, row, provider_refund_id=provider_refund_id)
    return "succeeded"


def _intent_of(session: Session, row: Refund) -> str | None:
    """The intent whose money this refund returns: its payment's, else the order's paid one."""
    if row.payment_id is not None:
        payment = session.get(Payment, row.payment_id)
        if payment is not None and payment.intent_id is not None:
            return payment.intent_id
    return session.scalars(
        select(PaymentIntent.id)
        .where(PaymentIntent.order_id == row.order_id)
        # A provider needs the intent that took money: succeeded ones first, then the oldest.
        .order_by((PaymentIntent.status == "succeeded").desc(), PaymentIntent.created_at)
    ).first()


def _fail_for_good(session: Session, row: Refund) -> None:
    row.status = "failed"
    log.error(
        "refund %s failed for good after %d attempts: %s", row.id, row.attempts, row.last_error
    )
    alerts.refund_failed(session, row)


def mark_paid(
    session: Session, row: Refund, *, status: str = "succeeded", provider_refund_id: str | None
) -> None:
    """The money reached the shopper: count it on the order, which may close as refunded."""
    row.status = status
    row.provider_refund_id = provider_refund_id
    row.succeeded_at = utcnow()
    if status == "succeeded":
        row.last_error = None
    order = lock_order(session, row.order_id)
    order.refunded_cents += row.amount_cents
    # Points earned or spent and coupons used follow the money back (`tuanbox.coupons`).
    from tuanbox.coupons.settlement import refund_paid

    refund_paid(session, order)
    # An invitee's refund takes their inviter's task count back (`tuanbox.growth`).
    from tuanbox.growth.hooks import settle_inviter_of

    settle_inviter_of(session, order)
    outstanding = session.scalar(
        select(func.count()).where(
            Refund.order_id == order.id, Refund.status == "pending", Refund.id != row.id
        )
    )
    if (
        order.status in _REFUND_CLOSES
        and order.refunded_cents == order.paid_cents
        and not outstanding
    ):
        transition(
            session,
            order,
            OrderStatus.REFUNDED,
            actor=Actor(id="system", role="system"),
            reason=f"refund {row.id} succeeded",
        )


class _Unavailable:
    """Stands in for a provider that is not enabled in this process; every call fails."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self._reason = name, reason

    def create_checkout(
        self, session: Session, intent_id: str, amount_cents: int, *, payer_ip: str | None = None
    ) -> str:
        raise ProviderError(self._reason)

    def refund(self, session: Session, *, refund_id: str, intent_id: str, amount_cents: int) -> str:
        raise ProviderError(self._reason)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        raise ProviderError(self._reason)


def process_due_refunds(
    factory: sessionmaker[Session],
    provider_for: Callable[[str], PaymentProvider],
    *,
    now: datetime | None = None,
    batch: int = 100,
    base_s: float = 5.0,
    max_s: float = 600.0,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> dict[str, int]:
    """Attempt every pending refund whose time has come; each in its own transaction."""
    with factory() as session:
        ids = session.scalars(
            select(Refund.id)
            .where(Refund.status == "pending", Refund.next_attempt_at <= (now or utcnow()))
            .order_by(Refund.next_attempt_at)
            .limit(batch)
        ).all()
    counts: dict[str, int] = {}
    for refund_id in ids:
        with factory() as session, session.begin():
            name = session.scalar(select(Refund.provider).where(Refund.id == refund_id)) or "sim"
            try:
                provider: PaymentProvider = provider_for(name)
            except UnknownProviderError as exc:
                # A provider switched off since: its refunds fail (and alert) like any outage
                # instead of stopping the queue behind them.
                provider = _Unavailable(name, str(exc))
            status = process_refund(
                session,
                refund_id,
                provider,
                base_s=base_s,
                max_s=max_s,
                max_attempts=max_attempts,
                now=now,
            )
        counts[status] = counts.get(status, 0) + 1
    return counts
