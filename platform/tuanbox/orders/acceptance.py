"""How paid regular and flash-sale orders get confirmed: on payment, or by their merchant.

Registered as an order hook (listed in `tuanbox.orders.hooks.HOOK_MODULES`). A merchant set
to "auto" has its orders confirmed on payment; one set to "manual" accepts or rejects each
paid order within its window, and the deadline scan applies the merchant's lapse policy
(confirm, or cancel and so refund) to those left unanswered. Group orders wait for their
group (`tuanbox.groupbuy.closing`), pre-sale orders for their batch at the hub
(`tuanbox.presale.receiving`); an order without a pickup station cannot go to a locker and
waits for one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.audit.services import Actor, record
from tuanbox.catalog.models import Merchant
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.orders.domain import AcceptanceMode, Awaiting, LapsePolicy, OrderKind, OrderStatus
from tuanbox.orders.errors import IllegalTransitionError
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order
from tuanbox.orders.services import lock_order, transition

log = logging.getLogger("tuanbox.orders.acceptance")

SYSTEM = Actor(id="system:acceptance", role="system")
MIN_WINDOW_S, MAX_WINDOW_S = 60, 7 * 86400


def on_paid(session: Session, order: Order, from_status: str) -> None:
    """Orders hook: confirm at once, or record what the paid order now waits for."""
    if order.kind == OrderKind.GROUP or order.station_id is None:
        order.awaiting = Awaiting.GROUP if order.kind == OrderKind.GROUP else Awaiting.STATION
        session.flush()
        return
    merchant = session.get(Merchant, order.merchant_id)
    assert merchant is not None  # FK
    if merchant.order_acceptance == AcceptanceMode.MANUAL:
        order.awaiting = Awaiting.MERCHANT
        order.accept_deadline = utcnow() + timedelta(seconds=merchant.acceptance_window_s)
        session.flush()
        return
    transition(session, order, OrderStatus.CONFIRMED, actor=SYSTEM, reason="confirmed on payment")


on_status(OrderStatus.PAID, on_paid)


def _awaiting_merchant(session: Session, order_id: str) -> Order:
    order = lock_order(session, order_id)
    if order.status != OrderStatus.PAID or order.awaiting != Awaiting.MERCHANT:
        raise IllegalTransitionError(
            "only a paid order awaiting its merchant can be accepted or rejected",
            order_id=order.id,
            from_status=order.status,
        )
    return order


def accept(session: Session, order_id: str, *, actor: Actor) -> Order:
    """Merchant staff accept a paid order: it is confirmed and joins a delivery wave."""
    order = _awaiting_merchant(session, order_id)
    return transition(
        session, order, OrderStatus.CONFIRMED, actor=actor, reason="merchant accepted"
    )


def reject(session: Session, order_id: str, *, actor: Actor, reason: str) -> Order:
    """Merchant staff reject a paid order: it is cancelled, and so refunded in full."""
    order = _awaiting_merchant(session, order_id)
    return transition(
        session, order, OrderStatus.CANCELLED, actor=actor, reason=f"merchant rejected: {reason}"
    )


def apply_deadlines(
    factory: sessionmaker[Session], *, now: datetime | None = None, batch: int = 100
) -> int:
    """Apply each merchant's lapse policy to paid orders past their acceptance deadline.

    A scan of the database (deadlines live there), in committed batches with SKIP LOCKED:
    a restarted beat loses nothing, two scans at once share the work, and an order a
    merchant is accepting right now is left to them (it is no longer awaiting next time).
    """
    total = 0
    while True:
        moment = now or utcnow()
        with factory() as session, session.begin():
            orders = session.scalars(
                select(Order)
                .where(
                    Order.status == OrderStatus.PAID,
                    Order.awaiting == Awaiting.MERCHANT,
                    Order.accept_deadline <= moment,
                )
                .order_by(Order.accept_deadline, Order.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for order in orders:
                merchant = session.get(Merchant, order.merchant_id)
                assert merchant is not None  # FK
                if merchant.acceptance_lapse == LapsePolicy.CONFIRM:
                    transition(
                        session, order, OrderStatus.CONFIRMED, actor=SYSTEM,
                        reason="acceptance deadline passed: merchant policy confirms",
                    )  # fmt: skip
                else:
                    transition(
                        session, order, OrderStatus.CANCELLED, actor=SYSTEM,
                        reason="acceptance deadline passed: merchant policy refunds",
                    )  # fmt: skip
        total += len(orders)
        if len(orders) < batch:
            if total:
                log.info("applied acceptance deadlines to %d orders", total)
            return total


@dataclass(frozen=True)
class AcceptancePolicy:
    mode: AcceptanceMode
    window_s: int
    lapse: LapsePolicy


def policy_of(merchant: Merchant) -> AcceptancePolicy:
    return AcceptancePolicy(
        AcceptanceMode(merchant.order_acceptance),
        merchant.acceptance_window_s,
        LapsePolicy(merchant.acceptance_lapse),
    )


def set_policy(
    session: Session, merchant_id: str, policy: AcceptancePolicy, *, actor: Actor
) -> Merchant:
    """Change how the merchant's paid orders get confirmed (audited).

    Orders already awaiting acceptance keep their deadline; the lapse policy in force when
    a deadline passes is the one applied.
    """
    if not MIN_WINDOW_S <= policy.window_s <= MAX_WINDOW_S:
        raise InvalidInputError(
            f"the window is between {MIN_WINDOW_S} and {MAX_WINDOW_S} seconds", field="window_s"
        )
    merchant = session.get(Merchant, merchant_id, with_for_update=True)
    if merchant is None:
        raise NotFoundError("merchant not found", field="merchant_id")
    before = policy_of(merchant)
    merchant.order_acceptance = policy.mode.value
    merchant.acceptance_window_s = policy.window_s
    merchant.acceptance_lapse = policy.lapse.value
    record(
        session,
        actor,
        "merchant.order_acceptance",
        "merchant",
        merchant.id,
        reason="order acceptance policy changed",
        details={
            "from": {"mode": before.mode, "window_s": before.window_s, "lapse": before.lapse},
            "to": {"mode": policy.mode, "window_s": policy.window_s, "lapse": policy.lapse},
        },
        before={"mode": before.mode, "window_s": before.window_s, "lapse": before.lapse},
        after={"mode": policy.mode, "window_s": policy.window_s, "lapse": policy.lapse},
    )
    session.flush()
    return merchant
