"""A shopper erases their account: personal fields go, orders stay (with the account id).

What goes: phone (ciphertext and blind index), name, saved addresses, sign-in codes, the
notices sent to them, stored idempotent replies, risk signals keyed to the account, the
free text they wrote (return reasons, their own reasons on order transitions, review texts:
the rating stays); every token is revoked. What stays, for the books: the users row as a
tombstone (`erased_at`, no personal field, never active again), its orders, payments,
refunds and returns, and the audit log (append-only; it never holds a phone, name or
address). Coupons, points, referrals, membership, tags and pushes: `privacy.growth`. Unpaid
orders are cancelled; while any order is still moving (paid, at a locker,
on hold, being returned) the erasure is refused with the list of those orders.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import column, delete, func, inspect, select, table, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from tuanbox.accounts.models import Address, OtpCode, RefreshToken, Role, User
from tuanbox.accounts.revocation import Revocations
from tuanbox.audit.services import Actor, record
from tuanbox.crypto import PiiCipher, PiiDecryptError
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError, PermissionDeniedError
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.notifications.models import Notification
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.orders.services import transition
from tuanbox.privacy import growth
from tuanbox.privacy.errors import OrdersInFlightError
from tuanbox.returns.models import ReturnRequest
from tuanbox.settings import Settings

S = OrderStatus
# Orders still moving: money taken and goods (or a refund) on their way. Erasing now would
# take away how the shopper is told their parcel is ready or their refund is paid.
IN_FLIGHT = frozenset(
    {S.PAID, S.CONFIRMED, S.ALLOCATED, S.READY_FOR_PICKUP, S.QUALITY_HOLD,
     S.RETURN_REQUESTED, S.RETURNED}
)  # fmt: skip
ERASED_TEXT = "[erased]"
# Other features' tables keyed by account id, when this database has them: rows of personal
# signals to delete, and (table, column) of text the shopper wrote to blank.
USER_KEYED_TABLES = ("risk_signals",)
USER_TEXT_COLUMNS = (("reviews", "text"),)


@dataclass(frozen=True)
class Erased:
    user_id: str
    erased_at: datetime
    orders_kept: int
    orders_cancelled: list[str]


def _in_flight(session: Session, user_id: str) -> list[Order]:
    """The account's orders that are not finished, locked in id order (a webhook paying one
    of them now waits for this transaction, then finds it cancelled or the account gone)."""
    open_statuses = [*IN_FLIGHT, S.PENDING_PAYMENT]
    return list(
        session.scalars(
            select(Order)
            .where(Order.user_id == user_id, Order.status.in_(open_statuses))
            .order_by(Order.id)
            .with_for_update()
        )
    )


def _other_features(session: Session, user_id: str) -> dict[str, int]:
    """Delete the account's signal rows and blank its texts in other features' tables (those
    this database has: features come and go without this module importing them)."""
    out: dict[str, int] = {}
    present = set(inspect(session.connection()).get_table_names())
    for name in USER_KEYED_TABLES:
        if name in present:
            keyed = table(name, column("user_id"))
            result = session.execute(delete(keyed).where(keyed.c.user_id == user_id))
            out[name] = int(result.rowcount)  # type: ignore[attr-defined]
    for name, text in USER_TEXT_COLUMNS:
        if name in present:
            keyed = table(name, column("user_id"), column(text))
            blank = update(keyed).where(keyed.c.user_id == user_id, keyed.c[text] != "")
            result = session.execute(blank.values({text: ""}))
            out[name] = int(result.rowcount)  # type: ignore[attr-defined]
    return out


def erase(
    session: Session,
    settings: Settings,
    revocations: Revocations,
    actor: Actor,
    user_id: str,
) -> Erased:
    """Erase a shopper's personal data in the caller's transaction (audited); the caller
    commits. OrdersInFlightError (409) names the orders that must finish first."""
    user = session.get(User, user_id, with_for_update=True)
    if user is None or user.erased_at is not None:
        raise NotFoundError("no such account")
    if user.role != Role.SHOPPER:
        raise PermissionDeniedError("staff accounts are closed by an admin, not erased")
    open_orders = _in_flight(session, user.id)
    busy = [o for o in open_orders if o.status in IN_FLIGHT]
    if busy:
        raise OrdersInFlightError(
            f"{len(busy)} order(s) still in progress; the account can be erased once they are "
            "picked up, returned or refunded",
            orders=[{"id": o.id, "status": o.status} for o in busy],
        )
    cancelled = []
    for order in open_orders:
        transition(session, order, S.CANCELLED, actor=actor, reason="account erased")
        cancelled.append(order.id)

    cipher = PiiCipher(settings)
    indexes: list[str] = [user.phone_hash] if user.phone_hash else []
    if user.phone_enc:
        # Unreadable: its own index still finds the codes and texts sent to it.
        with contextlib.suppress(PiiDecryptError):
            indexes += cipher.blind_indexes(cipher.decrypt(user.phone_enc, context="phone"))
    counts: dict[str, int] = {}

    def drop(name: str, statement: Executable) -> None:
        counts[name] = int(session.execute(statement).rowcount)  # type: ignore[attr-defined]

    drop("addresses", delete(Address).where(Address.user_id == user.id))
    drop("notifications", delete(Notification).where(Notification.user_id == user.id))
    if indexes:
        drop("otp_codes", delete(OtpCode).where(OtpCode.phone_hash.in_(indexes)))
        drop("texts", delete(Notification).where(Notification.recipient_hash.in_(indexes)))
    drop("idempotency_keys", delete(IdempotencyKey).where(IdempotencyKey.principal == user.id))
    drop(
        "return_reasons",
        update(ReturnRequest)
        .where(ReturnRequest.user_id == user.id, ReturnRequest.reason != "")
        .values(reason=ERASED_TEXT),
    )
    own_orders = select(Order.id).where(Order.user_id == user.id).scalar_subquery()
    drop(
        "transition_reasons",
        update(OrderTransition)
        .where(OrderTransition.order_id.in_(own_orders), OrderTransition.actor_id == user.id)
        .values(reason=ERASED_TEXT),
    )
    counts.update(_other_features(session, user.id))
    now = utcnow()
    counts.update(growth.erase(session, user.id, now))

    user.phone_enc = user.phone_hash = None
    user.display_name = user.display_name_enc = None
    user.login = user.password_hash = None
    user.active = False
    user.erased_at = now
    user.token_version += 1
    user.tokens_revoked_at = now
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    kept = int(
        session.scalar(select(func.count()).select_from(Order).where(Order.user_id == user.id)) or 0
    )
    record(session, actor, "user.erase", "user", user.id,
           details={"orders_kept": kept, "orders_cancelled": cancelled, **counts})  # fmt: skip
    session.flush()
    # Written before the caller commits, as when an admin disables an account: the DB never
    # says "erased" while a replica still admits the account's tokens.
    revocations.publish(user.id, user.token_version, now, now=now)
    return Erased(user.id, now, kept, cancelled)
