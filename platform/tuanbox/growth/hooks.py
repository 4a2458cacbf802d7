"""Order hooks of growth: an invitee's order picked up or refunded settles their inviter's
invite tasks (leaderboards need nothing: they count from the orders when a period ends)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.hooks import on_status
from tuanbox.orders.models import Order


def settle_inviter_of(session: Session, order: Order, from_status: str = "") -> None:
    """Also called by payments when a refund reaches the shopper (a partial refund changes
    no status but takes the invitee's count back)."""
    from tuanbox.growth.binding import inviter_of
    from tuanbox.growth.invite_tasks import settle

    inviter = inviter_of(session, order.user_id)
    if inviter is not None:
        settle(session, inviter)


on_status(OrderStatus.PICKED_UP, settle_inviter_of)
on_status(OrderStatus.REFUNDED, settle_inviter_of)
on_status(OrderStatus.RETURN_REQUESTED, settle_inviter_of)
on_status(OrderStatus.COMPLETED, settle_inviter_of)


def _paid(session: Session, order: Order, from_status: str) -> None:
    """A new-user offer's order paid from a payment account that already had another
    person's offer: the money moved, so a person decides (the order is held for review and
    is not confirmed until ops approve or reject it)."""
    from tuanbox.growth.newuser import bind_payer

    if bind_payer(session, order):
        return
    from tuanbox.risk.decisions import file_review
    from tuanbox.risk.rules import Action, Event
    from tuanbox.risk.scoring import Verdict

    file_review(
        session,
        subject_type="order",
        subject_id=order.id,
        event=Event.PAYMENT_SUCCEEDED,
        user_id=order.user_id,
        decided=Verdict((), 100, Action.REVIEW),
        orders=[order],
        money_taken=True,
    )


def _closed_unpaid(session: Session, order: Order, from_status: str) -> None:
    from tuanbox.growth.newuser import release

    release(session, order)


on_status(OrderStatus.PAID, _paid)
on_status(OrderStatus.CANCELLED, _closed_unpaid)
on_status(OrderStatus.EXPIRED, _closed_unpaid)
