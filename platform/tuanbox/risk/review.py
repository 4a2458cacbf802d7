"""The ops review queue: list reviews; approve one (its orders go on) or reject it (cancelled).

Locks are taken orders first, then the review, in the order every other path takes them
(a payment webhook holds its order, then updates the order's review), so a decision and a
webhook never wait on each other in a cycle. Every decision is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.db.base import utcnow
from tuanbox.orders.domain import Awaiting, OrderStatus
from tuanbox.orders.models import Order
from tuanbox.orders.services import lock_order, transition
from tuanbox.risk.errors import ReviewDecidedError, ReviewNotFoundError
from tuanbox.risk.models import RiskHold, RiskReview

# Held orders a rejection cancels (and so refunds); later ones are already on their way.
_CANCELLABLE = frozenset({OrderStatus.PENDING_PAYMENT, OrderStatus.PAID, OrderStatus.CONFIRMED})


def get_review(session: Session, review_id: int) -> RiskReview:
    review = session.get(RiskReview, review_id)
    if review is None:
        raise ReviewNotFoundError(f"risk review {review_id} not found")
    return review


def held_order_ids(session: Session, review_id: int) -> list[str]:
    return list(
        session.scalars(
            select(RiskHold.order_id)
            .where(RiskHold.review_id == review_id)
            .order_by(RiskHold.order_id)
        )
    )


def list_reviews(
    session: Session, *, status: str = "open", limit: int = 50, before_id: int | None = None
) -> list[RiskReview]:
    """Reviews in one status, newest first; `before_id` pages on."""
    query = select(RiskReview).where(RiskReview.status == status)
    if before_id is not None:
        query = query.where(RiskReview.id < before_id)
    return list(session.scalars(query.order_by(RiskReview.id.desc()).limit(limit)))


def open_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(RiskReview.status == "open")) or 0)


@dataclass
class Decision:
    """What a decision did to the review's held orders."""

    review: RiskReview
    confirmed: list[str] = field(default_factory=list)  # paid and waiting: confirmed now
    released: list[str] = field(default_factory=list)  # no longer held; they go on as usual
    still_held: list[str] = field(default_factory=list)  # another open review holds them
    cancelled: list[str] = field(default_factory=list)  # rejected: cancelled (refunded if paid)
    untouched: list[str] = field(default_factory=list)  # already past the point of cancelling


def _lock(session: Session, review_id: int) -> tuple[RiskReview, list[Order]]:
    get_review(session, review_id)
    orders = [lock_order(session, order_id) for order_id in held_order_ids(session, review_id)]
    review = session.scalars(
        select(RiskReview)
        .where(RiskReview.id == review_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if review.status != "open":
        raise ReviewDecidedError(
            f"risk review {review_id} was already {review.status}", review_status=review.status
        )
    return review, orders


def _held_elsewhere(session: Session, order_id: str, review_id: int) -> bool:
    other = session.scalar(
        select(RiskHold.review_id)
        .join(RiskReview, RiskReview.id == RiskHold.review_id)
        .where(
            RiskHold.order_id == order_id,
            RiskHold.review_id != review_id,
            RiskReview.status == "open",
        )
        .limit(1)
    )
    return other is not None


def _close(session: Session, review: RiskReview, status: str, actor: Actor, note: str) -> None:
    review.status = status
    review.decided_by = actor.id[:64]
    review.decided_at = utcnow()
    review.decision_note = note[:500]


def _audit(session: Session, decision: Decision, actor: Actor, note: str) -> None:
    review = decision.review
    record(
        session,
        actor,
        f"risk.review.{review.status}",
        "risk_review",
        str(review.id),
        reason=note,
        details={
            "subject": review.subject_key,
            "score": review.score,
            "action": review.action,
            "rules": [hit.get("rule") for hit in review.hits],
            "confirmed": decision.confirmed,
            "released": decision.released,
            "still_held": decision.still_held,
            "cancelled": decision.cancelled,
            "untouched": decision.untouched,
        },
        before={"status": "open"},
        after={"status": review.status},
    )
    session.flush()


def approve(session: Session, review_id: int, actor: Actor, note: str) -> Decision:
    """The decision was a false alarm: each held order goes on (a paid one waiting for the
    review is confirmed now), unless another open review still holds it."""
    review, orders = _lock(session, review_id)
    _close(session, review, "approved", actor, note)
    decision = Decision(review)
    for order in orders:
        if _held_elsewhere(session, order.id, review.id):
            decision.still_held.append(order.id)
            continue
        order.risk_hold = False
        session.flush()  # before the transition re-reads the locked row
        if order.status == OrderStatus.PAID and order.awaiting == Awaiting.REVIEW:
            transition(
                session,
                order,
                OrderStatus.CONFIRMED,
                actor=actor,
                reason=f"risk review {review.id} approved: {note}"[:500],
            )
            decision.confirmed.append(order.id)
        else:
            decision.released.append(order.id)
    _audit(session, decision, actor, note)
    return decision


def reject(session: Session, review_id: int, actor: Actor, note: str) -> Decision:
    """The decision stands: each held order not yet on its way is cancelled, which refunds
    what was paid (the payments hook). The account's later events score `rejected_before`."""
    review, orders = _lock(session, review_id)
    _close(session, review, "rejected", actor, note)
    decision = Decision(review)
    for order in orders:
        if order.status in _CANCELLABLE:
            transition(
                session,
                order,
                OrderStatus.CANCELLED,
                actor=actor,
                reason=f"risk review {review.id} rejected: {note}"[:500],
            )
            decision.cancelled.append(order.id)
        else:
            decision.untouched.append(order.id)
    _audit(session, decision, actor, note)
    return decision
