"""What refunds and completion do to coupons and points, computed from cumulative figures so
every call is safe to repeat: points earned on pickup, and on each refund paid the earned
points taken back, the spent points given back, and (refunded in full) the coupons returned.

Only money the order's payments count for matters here: a late or duplicate payment that
was refunded on its own (its refund names its payment) neither earns nor reverses anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tuanbox.coupons.domain import CouponStatus, aware, proportional
from tuanbox.coupons.models import Coupon, CouponEntry, OrderDiscount, OrderDiscountLine
from tuanbox.db.base import utcnow
from tuanbox.orders.models import Order
from tuanbox.payments.models import Payment, Refund
from tuanbox.payments.services import applied_cents, refund
from tuanbox.points import services as points


def refunded_of_applied(session: Session, order_id: str) -> int:
    """Refunds paid out of the order's applied payments (not of money sent back unapplied)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Refund.amount_cents), 0))
        .select_from(Refund)
        .outerjoin(Payment, Payment.id == Refund.payment_id)
        .where(
            Refund.order_id == order_id,
            Refund.status.in_(("succeeded", "resolved")),
            or_(Refund.payment_id.is_(None), Payment.disposition == "applied"),
        )
    )
    return int(total or 0)


def earn(session: Session, order: Order) -> int:
    """The order was picked up: it earns its points now (once)."""
    paid = applied_cents(session, order.id)
    refunded = refunded_of_applied(session, order.id)
    return points.earn_for_order(session, order, net_paid_cents=paid - refunded, refunded=refunded)


def refund_paid(session: Session, order: Order, *, now: datetime | None = None) -> None:
    """A refund of this order reached the shopper (payments' `mark_paid` calls this)."""
    now = now or utcnow()
    paid = applied_cents(session, order.id)
    refunded = min(refunded_of_applied(session, order.id), paid)
    points.reverse_for_refunds(session, order, refunded=refunded)
    discount = session.scalars(
        select(OrderDiscount).where(OrderDiscount.order_id == order.id).with_for_update()
    ).one_or_none()
    if discount is None or discount.status != "applied" or paid <= 0:
        return
    target = proportional(refunded, paid, discount.points_used)
    if target > discount.points_returned:
        points.post(
            session,
            order.user_id,
            f"returned:{order.id}:{target}",
            "return",
            target - discount.points_returned,
            order_id=order.id,
            note=f"refund on order {order.id}",
        )
        discount.points_returned = target
    if refunded >= paid:
        _restore_coupons(session, order, now)


def _restore_coupons(session: Session, order: Order, now: datetime) -> None:
    """Refunded in full: each coupon it used comes back, or expires if its window has ended."""
    held = session.scalars(
        select(Coupon).where(Coupon.order_id == order.id).order_by(Coupon.id).with_for_update()
    ).all()
    for coupon in held:
        valid = now < aware(coupon.valid_until)
        coupon.status = CouponStatus.AVAILABLE if valid else CouponStatus.EXPIRED
        coupon.order_id = None
        session.add(
            CouponEntry(
                key=f"restored:{coupon.id}:{order.id}",
                coupon_id=coupon.id,
                kind="restored" if valid else "expired",
                order_id=order.id,
                actor_id="system",
                at=now,
            )
        )


def refund_units(session: Session, order_id: str, units: int, *, reason: str, key: str) -> Refund:
    """Refund `units` of an order's not yet refunded lines: what was paid for those, to the
    cent (line price less its share of coupons and points), and with the last of them the
    delivery fee. The same key, the same refund."""
    from tuanbox.coupons.errors import DiscountLockedError
    from tuanbox.orders.services import lock_order

    order = lock_order(session, order_id)
    refund_key = f"units:{order.id}:{key}"
    existing = session.scalars(select(Refund).where(Refund.key == refund_key)).one_or_none()
    if existing is not None:
        return refund(session, order, existing.amount_cents, reason, refund_key)
    if not session.scalar(select(func.count()).where(OrderDiscountLine.order_id == order.id)):
        # No discount on it: its lines are its units at the list price.
        session.add_all(
            OrderDiscountLine(
                order_id=order.id,
                line_no=i + 1,
                amount_cents=order.unit_price_cents,
                coupon_cents=0,
                points_cents=0,
            )
            for i in range(order.qty)
        )
        session.flush()
    lines = list(
        session.scalars(
            select(OrderDiscountLine)
            .where(OrderDiscountLine.order_id == order.id, OrderDiscountLine.refund_id.is_(None))
            .order_by(OrderDiscountLine.line_no.desc())
            .with_for_update()
        )
    )
    if units > len(lines):
        raise DiscountLockedError(
            f"only {len(lines)} units are left to refund", units_left=len(lines)
        )
    chosen = lines[:units]
    amount = sum(line.amount_cents - line.coupon_cents - line.points_cents for line in chosen)
    if units == len(lines):
        # The order's last units: its delivery fee goes back with them, so refunding every
        # unit returns exactly what was paid (`tuanbox.membership.pricing`).
        amount += order.delivery_fee_cents
    row = refund(session, order, amount, reason, refund_key)
    for line in chosen:
        line.refund_id = row.id
    return row
