"""Ops' way out for a refund that failed for good: retry it, or record how it was paid."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.db.base import utcnow
from tuanbox.orders.services import lock_order
from tuanbox.payments.errors import RefundExceedsPaidError, RefundNotFoundError, RefundStateError
from tuanbox.payments.models import Refund
from tuanbox.payments.services import mark_paid, refundable_cents

log = logging.getLogger("tuanbox.payments")


def _failed_refund(session: Session, refund_id: str) -> Refund:
    row = session.scalars(
        select(Refund).where(Refund.id == refund_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise RefundNotFoundError(f"refund {refund_id} does not exist")
    if row.status != "failed":
        raise RefundStateError(f"refund {refund_id} is {row.status}, not failed")
    return row


def retry_failed(session: Session, refund_id: str, actor: Actor, note: str) -> Refund:
    """Back to pending with a fresh attempt budget; the worker picks it up at once. Audited."""
    row = _failed_refund(session, refund_id)
    # A failed refund stops counting as owed, so the money may have been refunded since.
    order = lock_order(session, row.order_id)
    available = refundable_cents(session, order)
    if row.amount_cents > available:
        raise RefundExceedsPaidError(
            f"refund of {row.amount_cents} exceeds the {available} cents still refundable",
            order_id=order.id,
        )
    before = {"status": row.status, "attempts": row.attempts}
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = utcnow()
    record(
        session,
        actor,
        "refund.retry",
        "refund",
        row.id,
        reason=note,
        details={"last_error": row.last_error, "amount_cents": row.amount_cents},
        before=before,
        after={"status": row.status, "attempts": row.attempts},
    )
    session.flush()
    return row


def resolve_failed(
    session: Session, refund_id: str, actor: Actor, note: str, reference: str | None = None
) -> Refund:
    """The shopper was paid outside the provider (bank transfer, cash): close it. Audited.

    The order counts the money as refunded, like a provider refund, and may close as refunded;
    the status `resolved` keeps it apart when the provider's statements are reconciled.
    """
    row = _failed_refund(session, refund_id)
    order = lock_order(session, row.order_id)
    available = refundable_cents(session, order)
    if row.amount_cents > available:
        raise RefundExceedsPaidError(
            f"refund of {row.amount_cents} exceeds the {available} cents still refundable",
            order_id=order.id,
        )
    before = {"status": row.status, "provider_refund_id": row.provider_refund_id}
    row.resolved_by = actor.id
    row.resolved_at = utcnow()
    row.resolution_note = note[:500]
    mark_paid(session, row, status="resolved", provider_refund_id=reference)
    record(
        session,
        actor,
        "refund.resolve",
        "refund",
        row.id,
        reason=note,
        details={"amount_cents": row.amount_cents, "reference": reference},
        before=before,
        after={"status": row.status, "provider_refund_id": row.provider_refund_id},
    )
    log.info("refund %s resolved by %s outside %s", row.id, actor.id, row.provider)
    session.flush()
    return row
