"""Risk use cases, one per event: sign-in, saved address, order or seat, checkout, payment
succeeded or failed, group closing; each records its signals and acts on the decision.

Entry points call these where things happen: sign-in (`signed_in`), a saved address
(`address_added`), an order or a group seat about to be created (`before_order`, then
`after_order`), checkout (`at_checkout`, where flash-sale orders are first seen: their
admission path stays Redis only), the payment webhooks (`payment_succeeded`,
`payment_failed`) and a group closing (`group_closing`).

A score at the block threshold refuses the request with 403 `RISK_BLOCKED`; the signals
and the decision are committed first, so the refusal is on record. A score at the review
threshold holds the order (`tuanbox.risk.decisions`); rejecting the review cancels and so
refunds it. Where money is already taken (a payment, a group closing) a block is held for
review too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import NoReturn

from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor
from tuanbox.db.base import utcnow
from tuanbox.db.engine import settings_of
from tuanbox.orders.domain import OrderKind, OrderStatus
from tuanbox.orders.models import Order
from tuanbox.risk import signals
from tuanbox.risk.decisions import (
    Screening,
    file_review,
    keys_for,
    order_key,
    ruleset_of,
    screen,
    user_key,
)
from tuanbox.risk.errors import RiskBlockedError
from tuanbox.risk.models import RiskReview
from tuanbox.risk.rules import Action, Event
from tuanbox.risk.scoring import evaluate_group
from tuanbox.risk.signals import Hasher, Keys
from tuanbox.settings import Settings

SYSTEM = Actor(id="system:risk", role="system")
# An account's first sign-in counts as its sign-up if the account is this young.
SIGNUP_WINDOW = timedelta(hours=1)


def _refuse(session: Session, review: RiskReview) -> NoReturn:
    # The signals and the decision are the record of a refused request: commit them first.
    session.commit()
    raise RiskBlockedError(
        "refused by risk control; quote the reference to customer service",
        reference=review.id,
    )


def _account_decision(session: Session, screening: Screening | None) -> None:
    """A decision about an account itself (sign-in, payment failures): queue it; refuse a block."""
    if screening is None or screening.action is Action.ALLOW:
        return
    review = file_review(
        session,
        subject_type="user",
        subject_id=screening.user_id,
        event=screening.event,
        user_id=screening.user_id,
        decided=screening.verdict,
    )
    if screening.action is Action.BLOCK and screening.event in (Event.SIGNIN, Event.SIGNUP):
        _refuse(session, review)


def signed_in(
    session: Session, settings: Settings, user_id: str, *, ip: str, device_id: str | None
) -> None:
    """A shopper signed in (or signed up: an account's first sign-in within its first hour)."""
    from tuanbox.accounts.models import User

    user = session.get(User, user_id)
    if user is None or user.role != "shopper":
        return
    created = user.created_at if user.created_at.tzinfo else user.created_at.replace(tzinfo=UTC)
    new = utcnow() - created < SIGNUP_WINDOW and not signals.seen(
        session, user.id, (Event.SIGNIN, Event.SIGNUP)
    )
    event = Event.SIGNUP if new else Event.SIGNIN
    keys = keys_for(session, settings, user.id, ip=ip, device_id=device_id)
    _account_decision(
        session, screen(session, settings, event, keys, subject_key=user_key(user.id, event))
    )


def address_added(session: Session, settings: Settings, user_id: str, text: str) -> None:
    """Link the account to the address's blind index; its later events carry it."""
    if settings.risk_enabled:
        keys = Keys(user_id, addresses=(Hasher(settings).address(text),))
        signals.record(session, Event.ADDRESS, keys, now=utcnow())


def before_order(
    session: Session,
    settings: Settings,
    *,
    event: Event,
    user_id: str,
    ip: str,
    device_id: str | None,
) -> Screening | None:
    """Screen an order (or group seat) about to be created; a block refuses it (403)."""
    keys = keys_for(session, settings, user_id, ip=ip, device_id=device_id)
    screening = screen(session, settings, event, keys, subject_key=user_key(user_id, event))
    if screening is not None and screening.action is Action.BLOCK:
        review = file_review(
            session,
            subject_type="user",
            subject_id=user_id,
            event=event,
            user_id=user_id,
            decided=screening.verdict,
        )
        _refuse(session, review)
    return screening


def after_order(session: Session, screening: Screening | None, order: Order) -> None:
    """The order screened by `before_order` exists: link its signals; hold it if so decided."""
    if screening is None:
        return
    signals.link_order(session, screening.signal_ids, order.id)
    if screening.action is Action.REVIEW:
        file_review(
            session,
            subject_type="order",
            subject_id=order.id,
            event=screening.event,
            user_id=order.user_id,
            decided=screening.verdict,
            orders=[order],
        )
    session.flush()


def at_checkout(
    session: Session, settings: Settings, order: Order, *, ip: str, device_id: str | None
) -> None:
    """Screen a checkout. A flash-sale order's first one counts as the order itself (its
    admission does no more than the Redis script). A block cancels the order (its stock goes
    back) and refuses the checkout; a review holds it."""
    from tuanbox.orders.services import transition

    if order.status != OrderStatus.PENDING_PAYMENT:
        return  # nothing to pay: the checkout itself answers that
    flash = order.kind == OrderKind.FLASH
    first = flash and not signals.order_recorded(session, order.id, Event.ORDER)
    event = Event.ORDER if first else Event.CHECKOUT
    keys = keys_for(session, settings, order.user_id, ip=ip, device_id=device_id)
    screening = screen(
        session,
        settings,
        event,
        keys,
        subject_key=order_key(order.id),
        order_id=order.id,
        flash_order=flash,
    )
    if screening is None or screening.action is Action.ALLOW:
        return
    review = file_review(
        session,
        subject_type="order",
        subject_id=order.id,
        event=event,
        user_id=order.user_id,
        decided=screening.verdict,
        orders=[order],
    )
    if screening.action is Action.BLOCK:
        transition(
            session,
            order,
            OrderStatus.CANCELLED,
            actor=SYSTEM,
            reason=f"blocked by risk control (review {review.id})",
        )
        _refuse(session, review)


def payment_succeeded(
    session: Session, order: Order, *, provider: str, payer_id: str | None
) -> None:
    """A payment is about to be applied to the (locked, unpaid) order: link the account to
    its payment account, and hold the order before it is confirmed if the score says so."""
    settings = settings_of(session)
    payer = Hasher(settings).payer(provider, payer_id) if payer_id else None
    keys = keys_for(session, settings, order.user_id, payer=payer)
    screening = screen(
        session,
        settings,
        Event.PAYMENT_SUCCEEDED,
        keys,
        subject_key=order_key(order.id),
        order_id=order.id,
        flash_order=order.kind == OrderKind.FLASH,
    )
    if screening is not None and screening.action is not Action.ALLOW:
        file_review(
            session,
            subject_type="order",
            subject_id=order.id,
            event=Event.PAYMENT_SUCCEEDED,
            user_id=order.user_id,
            decided=screening.verdict,
            orders=[order],
            money_taken=True,
        )


def payment_failed(session: Session, order: Order, *, provider: str, ref: str) -> str:
    """A payment attempt failed at the provider: counted once per provider reference, per
    account and per the device the order was checked out from. Returns what happened."""
    settings = settings_of(session)
    ip, device = signals.order_keys(session, order.id)
    addresses, payers = signals.sticky_keys(session, order.user_id)
    keys = Keys(order.user_id, ip=ip, device=device, addresses=addresses, payers=payers)
    screening = screen(
        session,
        settings,
        Event.PAYMENT_FAILED,
        keys,
        subject_key=user_key(order.user_id, Event.PAYMENT_FAILED),
        order_id=order.id,
        ref=f"{provider}:{ref}"[:120],
    )
    if screening is None:
        return "duplicate"
    _account_decision(session, screening)
    return "recorded"


def group_closing(session: Session, group_id: str, orders: Sequence[Order]) -> list[str]:
    """A group is about to be confirmed with these paid orders: hold the orders of linked
    accounts (shared device, address or payment account) if they fill it. Returns their ids."""
    settings = settings_of(session)
    if not settings.risk_enabled or len(orders) < 2:
        return []
    by_user = {order.user_id: order for order in orders}
    decided, linked = evaluate_group(ruleset_of(settings), signals.linking_keys(session, by_user))
    if decided.action is Action.ALLOW:
        return []
    held = [by_user[user] for user in linked]
    file_review(
        session,
        subject_type="group",
        subject_id=group_id,
        event=Event.JOIN,
        user_id=None,
        decided=decided,
        orders=held,
        money_taken=True,
    )
    return [order.id for order in held]
