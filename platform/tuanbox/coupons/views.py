"""Coupons and points API: the shopper's wallet, points and checkout discount; templates and
issuance for merchant staff and ops (audited); refunds by unit for ops."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import CurrentUser, OpsOrAdmin, Principal, Shopper, require_roles
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import record
from tuanbox.catalog.models import Merchant
from tuanbox.coupons import checkout, services
from tuanbox.coupons.errors import TemplateNotFoundError
from tuanbox.coupons.models import Coupon, CouponTemplate, OrderDiscount
from tuanbox.coupons.schemas import (
    ApplicableOut,
    CouponOut,
    DiscountIn,
    DiscountOut,
    IssueIn,
    IssueOut,
    LineOut,
    PointsEntryOut,
    PointsOut,
    RedeemIn,
    TemplateIn,
    TemplateOut,
    UnitRefundIn,
)
from tuanbox.coupons.settlement import refund_units
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError, PermissionDeniedError
from tuanbox.idempotency.deps import Idempotent
from tuanbox.orders.models import Order
from tuanbox.orders.views import visible_order
from tuanbox.payments.views import RefundOut
from tuanbox.points import services as points
from tuanbox.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["coupons"])
StaffOrOps = Annotated[Principal, Depends(require_roles("merchant_staff", "ops", "admin"))]


def policy_of(settings: Settings) -> checkout.Policy:
    return checkout.Policy(
        cents_per_point=settings.points_cash_cents_per_point,
        max_points_share_pct=settings.points_max_order_share_pct,
    )


def coupon_out(coupon: Coupon, template: CouponTemplate) -> CouponOut:
    return CouponOut(
        id=coupon.id,
        template_id=template.id,
        name=template.name,
        kind=template.kind,
        amount_off_cents=template.amount_off_cents,
        percent_off=template.percent_off,
        max_off_cents=template.max_off_cents,
        threshold_cents=template.threshold_cents,
        merchant_id=template.merchant_id,
        stackable=template.stackable,
        status=coupon.status,
        valid_from=coupon.valid_from,
        valid_until=coupon.valid_until,
        order_id=coupon.order_id,
    )


def discount_out(session: Session, order: Order) -> DiscountOut:
    row = session.get(OrderDiscount, order.id)
    applied = row is not None and row.status == "applied"
    lines = checkout.lines_of(session, order.id)
    return DiscountOut(
        order_id=order.id,
        total_cents=order.total_cents,
        coupon_cents=row.coupon_cents if row and applied else 0,
        points_used=row.points_used if row and applied else 0,
        points_cents=row.points_cents if row and applied else 0,
        discount_cents=order.discount_cents,
        delivery_fee_cents=order.delivery_fee_cents,
        payable_cents=order.due_cents,
        lines=[LineOut.model_validate(line) for line in lines],
    )


def _own_pending(session: Session, order_id: str, user: Principal) -> Order:
    order = visible_order(session, order_id, user)
    if order.user_id != user.id:
        raise NotFoundError("order not found")
    return order


# -- the shopper ---------------------------------------------------------------------------


@router.get("/me/coupons", response_model=list[CouponOut], responses=problems(401, 403))
def my_coupons(user: Shopper, session: SessionDep) -> list[CouponOut]:
    """The shopper's coupons: available first, soonest to expire first."""
    return [coupon_out(c, t) for c, t in services.wallet(session, user.id)]


@router.get("/me/points", response_model=PointsOut, responses=problems(401, 403))
def my_points(user: Shopper, session: SessionDep, settings: SettingsDep) -> PointsOut:
    """The shopper's points: the balance (the ledger's sum), any debt, the latest entries."""
    balance, debt = points.balance_of(session, user.id)
    return PointsOut(
        balance=balance,
        debt=debt,
        cash_cents_per_point=settings.points_cash_cents_per_point,
        entries=[PointsEntryOut.model_validate(e) for e in points.entries(session, user.id)],
    )


@router.post(
    "/me/points/coupons",
    status_code=201,
    response_model=CouponOut,
    responses=problems(401, 403, 404, 409, 422),
)
def redeem_points(
    body: RedeemIn, user: Shopper, session: SessionDep, idem: Idempotent
) -> JSONResponse:
    """Buy a coupon with points (templates with a `points_cost`); retried with the same
    Idempotency-Key, the same coupon."""

    def work() -> tuple[int, object]:
        key = f"{user.id}:{idem.key}" if idem.key else f"{user.id}:{utcnow().isoformat()}"
        coupon = services.redeem_points(session, user.id, body.template_id, key)
        template = services.get_template(session, coupon.template_id)
        return 201, coupon_out(coupon, template).model_dump(mode="json")

    return idem.respond(session, user.id, body.model_dump(), work)


@router.get(
    "/orders/{order_id}/coupons",
    response_model=list[ApplicableOut],
    responses=problems(401, 403, 404),
)
def applicable_coupons(
    order_id: str, user: Shopper, session: SessionDep, settings: SettingsDep
) -> list[ApplicableOut]:
    """The shopper's coupons for this order, each with what it takes off or why it cannot."""
    order = _own_pending(session, order_id, user)
    return [
        ApplicableOut(
            coupon=coupon_out(c, t), applicable=why is None, discount_cents=off, reason=why
        )
        for c, t, off, why in checkout.applicable(session, order, policy_of(settings), utcnow())
    ]


@router.put(
    "/orders/{order_id}/discount",
    response_model=DiscountOut,
    responses=problems(401, 403, 404, 409, 422),
)
def apply_discount(
    order_id: str, body: DiscountIn, user: Shopper, session: SessionDep, settings: SettingsDep
) -> DiscountOut:
    """Put coupons and points on an unpaid order, replacing what it had (an empty body takes
    them off). Errors: COUPON_EXPIRED, COUPON_NOT_APPLICABLE, COUPON_UNAVAILABLE,
    STACKING_REFUSED, POINTS_INSUFFICIENT, POINTS_OVER_LIMIT, DISCOUNT_LOCKED."""
    order = _own_pending(session, order_id, user)
    checkout.apply(session, order.id, user.id, body.coupon_ids, body.points, policy_of(settings))
    out = discount_out(session, order)
    session.commit()
    return out


@router.get("/orders/{order_id}/discount", response_model=DiscountOut, responses=problems(401, 404))
def get_discount(order_id: str, user: CurrentUser, session: SessionDep) -> DiscountOut:
    """An order's discount and its split over the order's lines (units)."""
    return discount_out(session, visible_order(session, order_id, user))


@router.post(
    "/orders/{order_id}/unit-refunds",
    status_code=201,
    response_model=RefundOut,
    responses=problems(401, 403, 404, 409, 422),
)
def unit_refund(
    order_id: str, body: UnitRefundIn, user: OpsOrAdmin, session: SessionDep, idem: Idempotent
) -> JSONResponse:
    """Ops: refund some units of an order, each at what the shopper paid for it (its price
    less its share of coupons and points); audited."""
    visible_order(session, order_id, user)

    def work() -> tuple[int, object]:
        key = idem.key or f"{body.units}:{body.reason}"
        row = refund_units(session, order_id, body.units, reason=body.reason, key=key)
        record(
            session,
            user.actor,
            "order.refund_units",
            "order",
            order_id,
            reason=body.reason,
            details={"units": body.units, "amount_cents": row.amount_cents, "refund_id": row.id},
        )
        return 201, RefundOut.model_validate(row).model_dump(mode="json")

    return idem.respond(session, user.id, {"order": order_id, **body.model_dump()}, work)


# -- merchant staff and ops ----------------------------------------------------------------


def _scope(session: Session, user: Principal, template: CouponTemplate) -> CouponTemplate:
    if user.role == "merchant_staff" and template.merchant_id != user.merchant_id:
        raise TemplateNotFoundError("coupon template not found")
    return template


@router.post(
    "/coupon-templates",
    status_code=201,
    response_model=TemplateOut,
    responses=problems(401, 403, 404, 409, 422),
)
def create_template(body: TemplateIn, user: StaffOrOps, session: SessionDep) -> CouponTemplate:
    """A coupon template: staff for their merchant, ops for any merchant or the platform."""
    merchant_id = body.merchant_id
    if user.role == "merchant_staff":
        if merchant_id not in (None, user.merchant_id):
            raise PermissionDeniedError("staff create coupons for their own merchant only")
        merchant_id = user.merchant_id
    if merchant_id is not None and session.get(Merchant, merchant_id) is None:
        raise NotFoundError("merchant not found", field="merchant_id")
    fields = body.model_dump(exclude={"merchant_id"})
    template = services.create_template(
        session, created_by=user.id, merchant_id=merchant_id, **fields
    )
    record(
        session,
        user.actor,
        "coupon.template_created",
        "coupon_template",
        template.id,
        details={"name": template.name, "merchant_id": merchant_id},
        after=TemplateOut.model_validate(template).model_dump(mode="json"),
    )
    session.commit()
    return template


@router.get("/coupon-templates", response_model=list[TemplateOut], responses=problems(401, 403))
def list_templates(user: StaffOrOps, session: SessionDep) -> list[CouponTemplate]:
    """Templates, newest first: a merchant's staff see their merchant's, ops see all."""
    query = select(CouponTemplate).order_by(CouponTemplate.created_at.desc()).limit(200)
    if user.role == "merchant_staff":
        query = query.where(CouponTemplate.merchant_id == user.merchant_id)
    return list(session.scalars(query))


@router.post(
    "/coupon-templates/{template_id}/issue",
    response_model=IssueOut,
    responses=problems(401, 403, 404, 409, 422),
)
def issue(
    template_id: str, body: IssueIn, user: StaffOrOps, session: SessionDep, settings: SettingsDep
) -> IssueOut:
    """Issue coupons to listed shoppers, or by the template's rule (new users, dormant ones).

    The same key never gives a shopper a second coupon, however often it is retried;
    shoppers over the limit or outside the audience are listed in `skipped`. Audited."""
    _scope(session, user, services.get_template(session, template_id))
    key = f"manual:{template_id}:{body.key}"
    if body.rule:
        result = services.issue_by_rule(
            session, template_id, key, actor_id=user.id, dormant_days=settings.coupon_dormant_days
        )
    else:
        assert body.user_ids is not None
        result = services.issue_to_users(
            session,
            template_id,
            body.user_ids,
            key,
            source="manual",
            actor_id=user.id,
            dormant_days=settings.coupon_dormant_days,
        )
    out = IssueOut(issued=len(result.issued), replayed=len(result.replayed), skipped=result.skipped)
    record(
        session,
        user.actor,
        "coupon.issued",
        "coupon_template",
        template_id,
        details={
            "key": body.key,
            "rule": body.rule,
            **out.model_dump(exclude={"skipped"}),
            "coupons": [c.id for c in result.issued][:1000],
        },
    )
    session.commit()
    return out
