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

from tuanbox.coupons.domain import CouponStatus, aware, combined_discount, proportional
from tuanbox.coupons.models import Coupon, CouponEntry, OrderDiscount, OrderDiscountLine
from tuanbox.db.base import utcnow
from tuanbox.orders.models import Order
from tuanbox.payments.models import Payment, Refund
from tuanbox.payments.services import applied_cents, refund
from tuanbox.points import services as points

# The key of the refund a group closing at a lower tier pays (`groupbuy.closing`): a price
# settled lower, not goods given back, so it returns no points and no coupon.
GROUP_PRICE_KEY = "gb-close:"


def refunded_of_applied(session: Session, order_id: str, *, repricing_only: bool = False) -> int:
    """Refunds paid out of the order's applied payments (not of money sent back unapplied);
    with `repricing_only`, only the group closing's price-difference refund."""
    query = (
        select(func.coalesce(func.sum(Refund.amount_cents), 0))
        .select_from(Refund)
        .outerjoin(Payment, Payment.id == Refund.payment_id)
        .where(
            Refund.order_id == order_id,
            Refund.status.in_(("succeeded", "resolved")),
            or_(Refund.payment_id.is_(None), Payment.disposition == "applied"),
        )
    )
    if repricing_only:
        query = query.where(Refund.key.startswith(GROUP_PRICE_KEY, autoescape=True))
    return int(session.scalar(query) or 0)


def settle_group_price(session: Session, order: Order, final_unit_cents: int) -> int:
    """A paid group order at its group's final price: what its goods cost the shopper now.

    The rule: the shopper owes what checkout would have asked at the final price with the
    same coupons and points. Amount-off coupons keep their cents, percent-off ones are taken
    on the final goods (cap included); the threshold was judged at payment and is not judged
    again. At least one cent of goods stays payable: the coupons give way first, then the
    points, whose excess goes back to the shopper as points. Each unit's line is rewritten
    at the final price (largest remainder), so unit refunds afterwards return what the unit
    now costs. Idempotent: the same order and price give the same figures and lines.
    A unit never costs more than was paid for it (a member price below the tier wins).
    """
    from tuanbox.coupons.checkout import held_pairs, terms_of, write_lines

    unit = min(order.unit_price_cents, final_unit_cents)
    goods = unit * order.qty
    discount = session.scalars(
        select(OrderDiscount).where(OrderDiscount.order_id == order.id).with_for_update()
    ).one_or_none()
    if discount is None or discount.status != "applied":
        write_lines(session, order, unit, 0, 0)
        return goods
    if discount.points_used > 0:
        per_point = discount.points_cents // discount.points_used
        kept = min(discount.points_used, max(0, goods - 1) // per_point)
        if kept < discount.points_used:
            points.post(
                session,
                order.user_id,
                f"{GROUP_PRICE_KEY}points:{order.id}",
                "return",
                discount.points_used - kept,
                order_id=order.id,
                note=f"group price settled lower on order {order.id}",
            )
            discount.points_used = kept
            discount.points_cents = kept * per_point
            discount.points_returned = min(discount.points_returned, kept)
    offs = combined_discount([terms_of(c, t) for c, t in held_pairs(session, order)], goods)
    coupon_cents = max(0, min(sum(offs), goods - 1 - discount.points_cents))
    discount.coupon_cents = coupon_cents
    write_lines(session, order, unit, coupon_cents, discount.points_cents)
    session.flush()
    return goods - coupon_cents - discount.points_cents


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
    # A lower group price is not goods given back: the points stay spent on what is kept.
    repriced = min(refunded_of_applied(session, order.id, repricing_only=True), refunded)
    target = proportional(refunded - repriced, paid - repriced, discount.points_used)
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
    if order.kind == "group" and order.group_id is not None:
        from tuanbox.groupbuy.models import Group

        group = session.get(Group, order.group_id)
        if group is not None and group.closed_at is None:
            # Its units' price is settled when the group closes; until then a shopper who
            # leaves cancels the whole order (a full refund).
            raise DiscountLockedError("a group order's units are refunded once its group closes")
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
