"""The discount an order gets at checkout (coupons, then points off), split over its lines.

An order is one SKU times a quantity, so its lines are its units: a refund of some units
returns what was paid for exactly those units. `split` itself takes lines of any amounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from tuanbox.coupons.domain import (
    CouponKind,
    CouponStatus,
    Terms,
    aware,
    combined_discount,
    refusal,
    split,
    stacking_refusal,
)
from tuanbox.coupons.errors import (
    CouponExpiredError,
    CouponNotApplicableError,
    CouponUnavailableError,
    DiscountLockedError,
    StackingRefusedError,
)
from tuanbox.coupons.models import (
    Coupon,
    CouponEntry,
    CouponTemplate,
    OrderDiscount,
    OrderDiscountLine,
)
from tuanbox.db.base import utcnow
from tuanbox.errors import ConflictError
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.models import Order
from tuanbox.orders.services import lock_order
from tuanbox.points import services as points
from tuanbox.points.errors import PointsOverLimitError

MAX_COUPONS = 5  # coupons one order may combine


@dataclass(frozen=True)
class Policy:
    """The settings checkout needs: what a point is worth, and how much of an order."""

    cents_per_point: int = 1
    max_points_share_pct: int = 50


@dataclass(frozen=True)
class Quote:
    total_cents: int
    coupon_offs: dict[str, int]  # coupon id -> cents off
    points: int
    points_cents: int

    @property
    def coupon_cents(self) -> int:
        return sum(self.coupon_offs.values())

    @property
    def discount_cents(self) -> int:
        return self.coupon_cents + self.points_cents

    @property
    def payable_cents(self) -> int:
        return self.total_cents - self.discount_cents


def terms_of(coupon: Coupon, template: CouponTemplate) -> Terms:
    return Terms(
        kind=CouponKind(template.kind),
        amount_off_cents=template.amount_off_cents,
        percent_off=template.percent_off,
        max_off_cents=template.max_off_cents,
        threshold_cents=template.threshold_cents,
        stackable=template.stackable,
        merchant_id=template.merchant_id,
        valid_from=aware(coupon.valid_from),
        valid_until=aware(coupon.valid_until),
    )


# The key of the person another account shared, in a refusal's words.
_SHARED = {"PHONE": "phone", "DEVICE": "device", "PAYER": "payment account"}
_ERRORS: dict[str, type[ConflictError]] = {
    "COUPON_EXPIRED": CouponExpiredError,
    "COUPON_NOT_YET_VALID": CouponExpiredError,
}


def _check_one(
    session: Session, order: Order, coupon: Coupon, template: CouponTemplate, now: datetime
) -> None:
    if coupon.user_id != order.user_id:
        raise CouponUnavailableError("no such coupon in your wallet", coupon_id=coupon.id)
    if coupon.status != CouponStatus.AVAILABLE and coupon.order_id != order.id:
        raise CouponUnavailableError(f"this coupon is {coupon.status}", coupon_id=coupon.id)
    code = refusal(
        terms_of(coupon, template),
        total_cents=order.total_cents,
        merchant_id=order.merchant_id,
        now=now,
    )
    if code is not None:
        error = _ERRORS.get(code, CouponNotApplicableError)
        raise error(
            f"coupon cannot be used on this order ({code})", coupon_id=coupon.id, reason=code
        )
    if template.audience == "new_user":
        earlier = session.scalar(
            select(func.count()).where(
                Order.user_id == order.user_id, Order.paid_at.is_not(None), Order.id != order.id
            )
        )
        if earlier:
            raise CouponNotApplicableError(
                "a new-user coupon is for a first order",
                coupon_id=coupon.id,
                reason="NOT_A_NEW_USER",
            )
        from tuanbox.growth.newuser import new_user_coupon_taken
        from tuanbox.risk.signals import order_keys

        _ip, device = order_keys(session, order.id)
        shared = new_user_coupon_taken(
            session, order.user_id, devices=(device,) if device else (), used_only=True
        )
        if shared is not None:
            raise CouponNotApplicableError(
                "a new-user coupon is one per person: another account on this "
                f"{_SHARED[shared]} already had one",
                coupon_id=coupon.id,
                reason="NEW_USER_TAKEN",
            )


def quote(
    session: Session,
    order: Order,
    pairs: Sequence[tuple[Coupon, CouponTemplate]],
    points_wanted: int,
    policy: Policy,
    now: datetime,
) -> Quote:
    """Price coupons and points on an order, or raise the first reason they cannot go.

    Every order kind takes them. A group order's discount is priced here on what it pays
    now (threshold judged now) and settled again at its group's final price when the group
    closes (`coupons.settlement.settle_group_price`)."""
    if len(pairs) > MAX_COUPONS:
        raise StackingRefusedError(f"at most {MAX_COUPONS} coupons on one order")
    for coupon, template in pairs:
        _check_one(session, order, coupon, template, now)
    code = stacking_refusal([t.stackable for _, t in pairs], with_points=points_wanted > 0)
    if code is not None:
        raise StackingRefusedError(
            "a coupon that does not stack goes alone (no other coupon, no points)"
        )
    offs = combined_discount([terms_of(c, t) for c, t in pairs], order.total_cents)
    coupon_cents = sum(offs)
    points_cents = points_wanted * policy.cents_per_point
    cap = min(
        order.total_cents * policy.max_points_share_pct // 100,
        max(0, order.total_cents - coupon_cents - 1),
    )
    if points_cents > cap:
        raise PointsOverLimitError(
            f"at most {cap // policy.cents_per_point} points on this order",
            max_points=cap // policy.cents_per_point,
        )
    return Quote(
        total_cents=order.total_cents,
        coupon_offs={c.id: off for (c, _), off in zip(pairs, offs, strict=True)},
        points=points_wanted,
        points_cents=points_cents,
    )


def applicable(
    session: Session, order: Order, policy: Policy, now: datetime
) -> list[tuple[Coupon, CouponTemplate, int, str | None]]:
    """Each coupon in the shopper's wallet with what it alone takes off this order, or why not."""
    rows = session.execute(
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(
            Coupon.user_id == order.user_id,
            (Coupon.status == CouponStatus.AVAILABLE) | (Coupon.order_id == order.id),
        )
        .order_by(Coupon.valid_until, Coupon.id)
    ).all()
    out: list[tuple[Coupon, CouponTemplate, int, str | None]] = []
    for coupon, template in rows:
        try:
            one = quote(session, order, [(coupon, template)], 0, policy, now)
        except ConflictError as exc:
            out.append((coupon, template, 0, str(exc.extra.get("reason", exc.code))))
        else:
            out.append((coupon, template, one.coupon_cents, None))
    return out


def _give_back(
    session: Session, order: Order, discount: OrderDiscount, *, why: str, now: datetime
) -> None:
    """Coupons held by the order back to the wallet (expired if past their window), and the
    points it used that no refund has returned yet."""
    held = session.scalars(
        select(Coupon).where(Coupon.order_id == order.id).order_by(Coupon.id).with_for_update()
    ).all()
    for coupon in held:
        valid = now < aware(coupon.valid_until)
        coupon.status = CouponStatus.AVAILABLE if valid else CouponStatus.EXPIRED
        coupon.order_id = None
        session.add(
            CouponEntry(
                key=f"{why}:{coupon.id}:{order.id}:{discount.version}",
                coupon_id=coupon.id,
                kind=why,
                order_id=order.id,
                actor_id="system",
                at=now,
            )
        )
    owed = discount.points_used - discount.points_returned
    if owed > 0:
        points.post(
            session,
            order.user_id,
            f"{why}:{order.id}:{discount.version}",
            "return",
            owed,
            order_id=order.id,
            note=f"points back from order {order.id}",
        )
        discount.points_returned = discount.points_used


def apply(
    session: Session,
    order_id: str,
    user_id: str,
    coupon_ids: Sequence[str],
    points_wanted: int,
    policy: Policy,
    *,
    now: datetime | None = None,
) -> OrderDiscount:
    """Put coupons and points on an unpaid order (replacing what it had), all or nothing.

    Coupon rows are locked in id order, so two checkouts wanting the same coupon meet on its
    row: the second sees it used and gets COUPON_UNAVAILABLE."""
    from tuanbox.payments.services import applied_cents

    now = now or utcnow()
    order = lock_order(session, order_id)
    if order.user_id != user_id:
        raise CouponUnavailableError("order not found")
    if order.status != OrderStatus.PENDING_PAYMENT or applied_cents(session, order.id):
        raise DiscountLockedError(f"a {order.status} order's discount cannot change")
    discount = session.scalars(
        select(OrderDiscount).where(OrderDiscount.order_id == order.id).with_for_update()
    ).one_or_none()
    if discount is None:
        discount = OrderDiscount(
            order_id=order.id,
            status="applied",
            version=0,
            coupon_cents=0,
            points_used=0,
            points_cents=0,
            points_returned=0,
        )
        session.add(discount)
    elif discount.status == "applied":
        _give_back(session, order, discount, why="released", now=now)
    discount.version += 1
    ids = sorted(dict.fromkeys(coupon_ids))
    coupons = session.scalars(
        select(Coupon)
        .where(Coupon.id.in_(ids))
        .order_by(Coupon.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    if len(coupons) != len(ids):
        raise CouponUnavailableError("no such coupon in your wallet")
    templates = {
        t.id: t
        for t in session.scalars(
            select(CouponTemplate).where(CouponTemplate.id.in_({c.template_id for c in coupons}))
        )
    }
    by_id = {c.id: c for c in coupons}
    # Applied in the shopper's order: amounts off before percentages gives them the most.
    pairs = sorted(
        ((by_id[i], templates[by_id[i].template_id]) for i in ids),
        key=lambda p: (p[1].kind != CouponKind.AMOUNT_OFF, p[0].id),
    )
    priced = quote(session, order, pairs, points_wanted, policy, now)
    for coupon, _template in pairs:
        coupon.status = CouponStatus.USED
        coupon.order_id = order.id
        session.add(
            CouponEntry(
                key=f"redeemed:{coupon.id}:{order.id}:{discount.version}",
                coupon_id=coupon.id,
                kind="redeemed",
                order_id=order.id,
                actor_id=user_id,
                cents=priced.coupon_offs[coupon.id],
                at=now,
            )
        )
    if points_wanted:
        points.post(
            session,
            user_id,
            f"spend:{order.id}:{discount.version}",
            "spend",
            -points_wanted,
            order_id=order.id,
            note=f"order {order.id}",
        )
    discount.status = "applied"
    discount.coupon_cents = priced.coupon_cents
    discount.points_used = points_wanted
    discount.points_cents = priced.points_cents
    discount.points_returned = 0
    _write_lines(session, order, priced)
    order.discount_cents = priced.discount_cents
    session.flush()
    return discount


def _write_lines(session: Session, order: Order, priced: Quote) -> None:
    write_lines(session, order, order.unit_price_cents, priced.coupon_cents, priced.points_cents)


def write_lines(
    session: Session, order: Order, unit_cents: int, coupon_cents: int, points_cents: int
) -> None:
    """The order's units at `unit_cents` each, coupons then points split over them by
    largest remainder (replacing the lines it had)."""
    session.execute(delete(OrderDiscountLine).where(OrderDiscountLine.order_id == order.id))
    amounts = [unit_cents] * order.qty
    coupon_shares = split(coupon_cents, amounts)
    points_shares = split(
        points_cents, [a - c for a, c in zip(amounts, coupon_shares, strict=True)]
    )
    session.add_all(
        OrderDiscountLine(
            order_id=order.id, line_no=i + 1, amount_cents=a, coupon_cents=c, points_cents=p
        )
        for i, (a, c, p) in enumerate(zip(amounts, coupon_shares, points_shares, strict=True))
    )


def held_pairs(session: Session, order: Order) -> list[tuple[Coupon, CouponTemplate]]:
    """The coupons an order holds with their templates, in the order `apply` prices them
    (amounts off before percentages, then by id); coupon rows locked in id order."""
    coupons = session.scalars(
        select(Coupon).where(Coupon.order_id == order.id).order_by(Coupon.id).with_for_update()
    ).all()
    templates = {
        t.id: t
        for t in session.scalars(
            select(CouponTemplate).where(CouponTemplate.id.in_({c.template_id for c in coupons}))
        )
    }
    return sorted(
        ((c, templates[c.template_id]) for c in coupons),
        key=lambda p: (p[1].kind != CouponKind.AMOUNT_OFF, p[0].id),
    )


def release_unpaid(session: Session, order: Order, *, now: datetime | None = None) -> None:
    """An unpaid order is cancelled or expired: its coupons and points go back at once."""
    discount = session.scalars(
        select(OrderDiscount).where(OrderDiscount.order_id == order.id).with_for_update()
    ).one_or_none()
    if discount is None or discount.status != "applied":
        return
    _give_back(session, order, discount, why="released", now=now or utcnow())
    discount.status = "released"


def lines_of(session: Session, order_id: str) -> list[OrderDiscountLine]:
    return list(
        session.scalars(
            select(OrderDiscountLine)
            .where(OrderDiscountLine.order_id == order_id)
            .order_by(OrderDiscountLine.line_no)
        )
    )
