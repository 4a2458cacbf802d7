"""Order use cases: create (reserving stock), transition under a row lock, expire unpaid."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tuanbox.audit.services import Actor, record
from tuanbox.catalog.models import Product, Sku
from tuanbox.catalog.stock import commit_stock, release_stock, reserve_stock
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.lockers.models import Station
from tuanbox.orders import hooks
from tuanbox.orders.domain import (
    Awaiting,
    OrderKind,
    OrderStatus,
    can_transition,
    stock_effect,
)
from tuanbox.orders.errors import IllegalTransitionError, OrderNotFoundError
from tuanbox.orders.models import Order, OrderTransition

log = logging.getLogger("tuanbox.orders")

SYSTEM = Actor(id="system", role="system")
DEFAULT_PAY_TIMEOUT_S = 900
# Roles whose order changes also go to the audit log (shoppers' own actions do not).
_AUDITED_ROLES = frozenset({"ops", "admin", "merchant_staff"})


def create_order(
    session: Session,
    *,
    user_id: str,
    sku_id: str,
    qty: int,
    unit_price_cents: int,
    kind: OrderKind | str = OrderKind.REGULAR,
    group_id: str | None = None,
    station_id: str | None = None,
    reserve: bool = True,
    pay_deadline: datetime | None = None,
    pay_timeout_s: int = DEFAULT_PAY_TIMEOUT_S,
    order_id: str | None = None,
    merchant_id: str | None = None,
    stock_held: bool | None = None,
    delivery_fee_cents: int = 0,
) -> Order:
    """A pending-payment order; with `reserve`, its stock is reserved in the same transaction.

    Flash sales reserve through their own guarded path and pass `reserve=False`; their
    stream writer passes the `order_id` the shopper was already given. A caller whose units
    are already set aside for this order (a capped group-buy campaign) passes
    `reserve=False, stock_held=True`, and one that knows the SKU's merchant (a campaign,
    checked when it was created) passes `merchant_id`, sparing the burst path two reads.
    Callers price it first (`tuanbox.membership.pricing`: member price, delivery fee).
    """
    if qty <= 0:
        raise InvalidInputError("qty must be positive", field="qty")
    if unit_price_cents < 0:
        raise InvalidInputError("price must not be negative", field="unit_price_cents")
    if delivery_fee_cents < 0:
        raise InvalidInputError("delivery fee must not be negative", field="delivery_fee_cents")
    if merchant_id is None:
        sku = session.get(Sku, sku_id)
        if sku is None:
            raise NotFoundError("SKU not found", field="sku_id")
        product = session.get(Product, sku.product_id)
        assert product is not None  # FK guarantees it
        merchant_id = product.merchant_id
    if station_id is not None and session.get(Station, station_id) is None:
        raise NotFoundError("no such pickup station", field="station_id")
    if reserve:
        reserve_stock(session, sku_id, qty)
    now = utcnow()
    order = Order(
        **({"id": order_id} if order_id is not None else {}),
        user_id=user_id,
        merchant_id=merchant_id,
        sku_id=sku_id,
        qty=qty,
        unit_price_cents=unit_price_cents,
        total_cents=unit_price_cents * qty,
        delivery_fee_cents=delivery_fee_cents,
        status=OrderStatus.PENDING_PAYMENT,
        kind=OrderKind(kind),
        group_id=group_id,
        station_id=station_id,
        stock_held=reserve if stock_held is None else stock_held,
        pay_deadline=pay_deadline or now + timedelta(seconds=pay_timeout_s),
    )
    session.add(order)
    session.flush()
    session.add(
        OrderTransition(
            order_id=order.id,
            from_status=None,
            to_status=OrderStatus.PENDING_PAYMENT,
            actor_id=user_id,
            actor_role="shopper",
            reason="created",
            at=now,
        )
    )
    return order


def lock_order(session: Session, order_id: str) -> Order:
    """The order row, locked FOR UPDATE and refreshed, or OrderNotFoundError."""
    order = session.scalars(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise OrderNotFoundError(f"order {order_id} not found")
    return order


def transition(
    session: Session,
    order_id_or_order: str | Order,
    to: OrderStatus | str,
    *,
    actor: Actor,
    reason: str,
) -> Order:
    """Move an order to `to` if the state machine allows it, or raise IllegalTransitionError.

    Locks the row first, so concurrent moves (a webhook and the expiry scan) serialise and
    the loser sees the winner's status. Stock is released or committed exactly once, the
    move is recorded, and registered hooks run in the same transaction. A paid order on risk
    hold is not confirmed: it stays paid, `awaiting` review.
    """
    order_id = order_id_or_order if isinstance(order_id_or_order, str) else order_id_or_order.id
    order = lock_order(session, order_id)
    target = OrderStatus(to)
    current = OrderStatus(order.status)
    if current == OrderStatus.PAID and target == OrderStatus.CONFIRMED and order.risk_hold:
        # Risk control holds it (`tuanbox.risk`): whatever would confirm it now (payment, its
        # group, its merchant) has happened, so it waits for ops, who confirm it on approval.
        order.awaiting = Awaiting.REVIEW
        session.flush()
        return order
    if not can_transition(current, target):
        raise IllegalTransitionError(
            f"an order cannot go from {current} to {target}",
            order_id=order.id,
            from_status=current.value,
            to_status=target.value,
        )
    effect = stock_effect(current, target, order.stock_held)
    if effect == "release":
        release_stock(session, order.sku_id, order.qty)
        order.stock_held = False
    elif effect == "commit":
        commit_stock(session, order.sku_id, order.qty)
        order.stock_held = False
    now = utcnow()
    order.status = target
    if current == OrderStatus.PAID:
        order.awaiting = None  # whatever it waited for is settled now
    if target == OrderStatus.PAID:
        order.paid_at = now
    elif target == OrderStatus.PICKED_UP:
        order.picked_up_at = now
    session.add(
        OrderTransition(
            order_id=order.id,
            from_status=current,
            to_status=target,
            actor_id=actor.id,
            actor_role=actor.role,
            reason=reason,
            at=now,
        )
    )
    if actor.role in _AUDITED_ROLES:
        record(
            session,
            actor,
            f"order.{target.value}",
            "order",
            order.id,
            reason=reason,
            details={"from": current.value},
            before={"status": current.value},
            after={"status": target.value},
        )
    session.flush()
    hooks.run(session, order, current.value)
    return order


def history(session: Session, order_id: str) -> list[OrderTransition]:
    return list(
        session.scalars(
            select(OrderTransition)
            .where(OrderTransition.order_id == order_id)
            .order_by(OrderTransition.id)
        )
    )


def expire_unpaid(
    factory: sessionmaker[Session], *, now: datetime | None = None, batch: int = 200
) -> int:
    """Expire pending orders past their pay deadline, releasing stock; returns how many.

    State lives in the DB, so a restarted beat loses nothing; SKIP LOCKED lets several
    workers scan at once and skips an order a payment webhook is holding right now.
    """
    total = 0
    while True:
        with factory() as session, session.begin():
            ids = session.scalars(
                select(Order.id)
                .where(
                    Order.status == OrderStatus.PENDING_PAYMENT,
                    Order.pay_deadline < (now or utcnow()),
                )
                .order_by(Order.pay_deadline)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            for order_id in ids:
                transition(session, order_id, OrderStatus.EXPIRED, actor=SYSTEM, reason="unpaid")
        total += len(ids)
        if len(ids) < batch:
            log.info("expired %d unpaid orders", total)
            return total
