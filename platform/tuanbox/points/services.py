"""Points use cases: post ledger entries (idempotent by key), earn on completion, reverse on
refund, spend and give back; the balance is the ledger's sum, cached on the account row."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tuanbox.coupons.domain import proportional
from tuanbox.orders.models import Order
from tuanbox.points.errors import InsufficientPointsError
from tuanbox.points.models import OrderPoints, PointsAccount, PointsEntry

CENTS_PER_POINT_EARNED = 100  # 1 yuan paid = 1 point


@dataclass(frozen=True)
class Posted:
    entry: PointsEntry
    replayed: bool


def lock_account(session: Session, user_id: str) -> PointsAccount:
    """The shopper's account row, created on first use and locked FOR UPDATE."""
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        ins(PointsAccount)
        .values(user_id=user_id, balance=0, debt=0)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    return session.scalars(
        select(PointsAccount)
        .where(PointsAccount.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def post(
    session: Session,
    user_id: str,
    key: str,
    kind: str,
    delta: int,
    *,
    order_id: str | None = None,
    note: str = "",
) -> Posted:
    """Change a balance by `delta` once per `key` (a repeated key returns the first entry).

    A credit pays any debt first; a debit that the balance cannot cover raises, except a
    `reverse` (a refund's take-back), whose uncovered part becomes debt: never negative."""
    account = lock_account(session, user_id)  # serialises every change of this balance
    existing = session.scalars(select(PointsEntry).where(PointsEntry.key == key)).one_or_none()
    if existing is not None:
        return Posted(existing, replayed=True)
    debt_delta = 0
    if delta > 0 and account.debt:
        repaid = min(account.debt, delta)
        delta, debt_delta = delta - repaid, -repaid
    elif delta < 0 and -delta > account.balance:
        if kind != "reverse":
            raise InsufficientPointsError(
                f"{-delta} points needed, {account.balance} available",
                balance=account.balance,
            )
        debt_delta = -delta - account.balance
        delta = -account.balance
    account.balance += delta
    account.debt += debt_delta
    entry = PointsEntry(
        key=key,
        user_id=user_id,
        kind=kind,
        delta=delta,
        debt_delta=debt_delta,
        order_id=order_id,
        note=note[:200],
    )
    session.add(entry)
    session.flush()
    return Posted(entry, replayed=False)


def balance_of(session: Session, user_id: str) -> tuple[int, int]:
    """(balance, debt) derived from the ledger itself, not the cached row."""
    row = session.execute(
        select(
            func.coalesce(func.sum(PointsEntry.delta), 0),
            func.coalesce(func.sum(PointsEntry.debt_delta), 0),
        ).where(PointsEntry.user_id == user_id)
    ).one()
    return int(row[0]), int(row[1])


def cached_balance(session: Session, user_id: str) -> int:
    account = session.get(PointsAccount, user_id)
    return account.balance if account is not None else 0


def entries(session: Session, user_id: str, limit: int = 50) -> list[PointsEntry]:
    return list(
        session.scalars(
            select(PointsEntry)
            .where(PointsEntry.user_id == user_id)
            .order_by(PointsEntry.id.desc())
            .limit(limit)
        )
    )


def earn_for_order(session: Session, order: Order, *, net_paid_cents: int, refunded: int) -> int:
    """The order completed: 1 point per whole yuan it paid net of refunds, once per order."""
    if session.get(OrderPoints, order.id) is not None:
        return 0
    earned = max(0, net_paid_cents) // CENTS_PER_POINT_EARNED
    session.add(
        OrderPoints(
            order_id=order.id,
            user_id=order.user_id,
            earned=earned,
            base_cents=max(0, net_paid_cents),
            refunded_base_cents=refunded,
        )
    )
    session.flush()
    if earned:
        post(
            session,
            order.user_id,
            f"earn:{order.id}",
            "earn",
            earned,
            order_id=order.id,
            note=f"order {order.id} completed",
        )
    return earned


def reverse_for_refunds(session: Session, order: Order, *, refunded: int) -> int:
    """Take back the points an order earned in proportion to what was refunded since.

    Cumulative: the target is floor(earned * refunded-since / base), so partial refunds that
    add up to the whole base take back exactly what was earned."""
    row = session.scalars(
        select(OrderPoints).where(OrderPoints.order_id == order.id).with_for_update()
    ).one_or_none()
    if row is None or not row.earned:
        return 0
    target = proportional(refunded - row.refunded_base_cents, row.base_cents, row.earned)
    step = target - row.reversed
    if step <= 0:
        return 0
    post(
        session,
        order.user_id,
        f"reverse:{order.id}:{target}",
        "reverse",
        -step,
        order_id=order.id,
        note=f"refund on order {order.id}",
    )
    row.reversed = target
    return step
