"""Bulk actions on a merchant's orders: one transaction, each order audited, a result per order.

Each order is moved in a SAVEPOINT of its own, so one that cannot move (another merchant's,
already accepted, cancelled meanwhile) is reported and the others still commit together.
Every move goes through `tuanbox.orders` (row lock, state machine, transition record, audit
entry for merchant staff); the batch itself is audited once more with its outcome. Under an
idempotency key a retried batch answers the first batch's results and changes nothing; even
without one, a second run finds the orders no longer awaiting and changes nothing.

Handing parcels to the courier is not a console action: the locker records the deposit
(`allocated → ready_for_pickup` on its `deposited` event), so the console does not claim it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.crypto import PiiCipher
from tuanbox.errors import InvalidInputError, TuanboxError
from tuanbox.idempotency import services as idempotency
from tuanbox.orders import acceptance
from tuanbox.orders.domain import Awaiting, OrderStatus
from tuanbox.orders.models import Order

MAX_ORDERS = 200


class BulkAction(StrEnum):
    ACCEPT = "accept"  # paid orders awaiting the merchant: confirmed, into the next wave
    REJECT = "reject"  # the same orders: cancelled, refunded in full


class Outcome(StrEnum):
    DONE = "done"
    NOT_FOUND = "not_found"  # no such order of this merchant (another's reads the same)
    NOT_AWAITING = "not_awaiting"  # it no longer awaits the merchant (says its status)
    FAILED = "failed"  # the move was refused (error code in `code`)


@dataclass(frozen=True)
class OrderResult:
    order_id: str
    outcome: Outcome
    status: str | None
    code: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class BulkResult:
    action: BulkAction
    results: list[OrderResult]
    replayed: bool = False

    @property
    def done(self) -> int:
        return sum(r.outcome == Outcome.DONE for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {"action": self.action.value, "results": [asdict(r) for r in self.results]}

    @classmethod
    def from_json(cls, body: dict[str, Any], *, replayed: bool) -> BulkResult:
        results = [
            OrderResult(
                order_id=r["order_id"],
                outcome=Outcome(r["outcome"]),
                status=r["status"],
                code=r.get("code"),
                detail=r.get("detail"),
            )
            for r in body["results"]
        ]
        return cls(BulkAction(body["action"]), results, replayed=replayed)


def _checked(order_ids: list[str], action: BulkAction, reason: str | None) -> list[str]:
    ids = list(dict.fromkeys(i.strip() for i in order_ids if i.strip()))  # keep order, once
    if not ids:
        raise InvalidInputError("choose at least one order", field="order_ids")
    if len(ids) > MAX_ORDERS:
        raise InvalidInputError(f"at most {MAX_ORDERS} orders at once", field="order_ids")
    if any(len(i) > 36 for i in ids):
        raise InvalidInputError("an order number is at most 36 characters", field="order_ids")
    if action == BulkAction.REJECT and not (reason and 3 <= len(reason.strip()) <= 400):
        raise InvalidInputError("say why, in 3 to 400 characters", field="reason")
    return ids


def apply(
    session: Session,
    *,
    merchant_id: str,
    action: BulkAction,
    order_ids: list[str],
    actor: Actor,
    reason: str | None = None,
) -> BulkResult:
    """Apply `action` to each order; the caller commits (all the successful moves at once)."""
    ids = _checked(order_ids, action, reason)
    owned = dict(
        session.execute(
            select(Order.id, Order.status).where(
                Order.id.in_(ids), Order.merchant_id == merchant_id
            )
        ).all()
    )
    results = []
    for order_id in ids:
        if order_id not in owned:
            results.append(OrderResult(order_id, Outcome.NOT_FOUND, None))
            continue
        results.append(_one(session, order_id, action, actor, reason))
    outcome = BulkResult(action, results)
    record(
        session,
        actor,
        f"console.orders.bulk_{action.value}",
        "merchant",
        merchant_id,
        reason=reason,
        details={
            "orders": len(results),
            "done": outcome.done,
            "done_ids": [r.order_id for r in results if r.outcome == Outcome.DONE],
        },
    )
    session.flush()
    return outcome


def _one(
    session: Session, order_id: str, action: BulkAction, actor: Actor, reason: str | None
) -> OrderResult:
    try:
        with session.begin_nested():
            order = session.scalars(
                select(Order)
                .where(Order.id == order_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ).one()
            if order.status != OrderStatus.PAID or order.awaiting != Awaiting.MERCHANT:
                return OrderResult(order_id, Outcome.NOT_AWAITING, order.status)
            if action == BulkAction.ACCEPT:
                moved = acceptance.accept(session, order_id, actor=actor)
            else:
                moved = acceptance.reject(session, order_id, actor=actor, reason=reason or "")
            return OrderResult(order_id, Outcome.DONE, moved.status)
    except TuanboxError as exc:  # this order's savepoint is rolled back; the others go on
        current = session.scalar(select(Order.status).where(Order.id == order_id))
        return OrderResult(order_id, Outcome.FAILED, current, exc.code, exc.detail)


def apply_once(
    session: Session,
    *,
    key: str,
    merchant_id: str,
    action: BulkAction,
    order_ids: list[str],
    actor: Actor,
    cipher: PiiCipher,
    reason: str | None = None,
) -> BulkResult:
    """`apply` at most once per (actor, key), committed; a retry answers the stored result."""
    payload = {"merchant_id": merchant_id, "order_ids": order_ids, "reason": reason}

    def work() -> tuple[int, Any]:
        done = apply(
            session,
            merchant_id=merchant_id,
            action=action,
            order_ids=order_ids,
            actor=actor,
            reason=reason,
        )
        return 200, done.as_json()

    stored = idempotency.run(
        session,
        principal=actor.id,
        key=key,
        method="POST",
        path=f"console:orders:bulk:{action.value}",
        payload=payload,
        work=work,
        cipher=cipher,
    )
    return BulkResult.from_json(stored.body, replayed=stored.replayed)
