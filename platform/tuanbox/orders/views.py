"""Orders API: buy, read (owner, merchant staff, ops), cancel, ops transitions, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import CurrentUser, OpsOrAdmin, Principal, Shopper, require_roles
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.catalog.models import Sku
from tuanbox.errors import NotFoundError, PermissionDeniedError
from tuanbox.idempotency.deps import Idempotent
from tuanbox.orders import services
from tuanbox.orders.domain import OrderKind, OrderStatus, shopper_may_cancel
from tuanbox.orders.errors import IllegalTransitionError, OrderNotFoundError
from tuanbox.orders.models import Order
from tuanbox.orders.schemas import CancelIn, OrderIn, OrderOut, TransitionIn, TransitionOut
from tuanbox.ratelimit import rate_limit
from tuanbox.risk.deps import RiskGateDep
from tuanbox.risk.rules import Event

router = APIRouter(tags=["orders"])
StaffOrAdmin = Annotated[Principal, Depends(require_roles("merchant_staff", "ops", "admin"))]


def visible_order(session: Session, order_id: str, user: Principal) -> Order:
    """The order if this principal may see it: its shopper, its merchant's staff, ops, admin."""
    order = session.get(Order, order_id)
    if order is None:
        raise OrderNotFoundError("order not found")
    if (
        user.role in ("ops", "admin")
        or order.user_id == user.id
        or user.staff_of(order.merchant_id)
    ):
        return order
    # Same answer as a missing order, so ids of other people's orders leak nothing.
    raise OrderNotFoundError("order not found")


@router.post(
    "/api/v1/orders",
    status_code=201,
    response_model=OrderOut,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[
        Depends(
            rate_limit(
                "orders-create",
                per_user=(lambda s: s.orders_create_per_user_per_min, 60),
                per_ip=(lambda s: s.orders_create_per_ip_per_min, 60),
            )
        )
    ],
)
def create_order(
    body: OrderIn,
    user: Shopper,
    session: SessionDep,
    settings: SettingsDep,
    idem: Idempotent,
    risk: RiskGateDep,
) -> JSONResponse:
    """Buy a SKU at its list price (a member at its member price, if lower) plus the delivery
    fee (none for members or over the free-delivery threshold); stock is reserved until paid
    or the pay timeout.

    Risk control may refuse it (403 `RISK_BLOCKED`) or hold it for review (`awaiting: review`
    once paid)."""
    screening = risk.before_order(session, Event.ORDER, user.id)

    def work() -> tuple[int, object]:
        sku = session.get(Sku, body.sku_id)
        if sku is None or not sku.active:
            raise NotFoundError("SKU not found", field="sku_id")
        from tuanbox.membership.pricing import DeliveryTerms, price_order

        # Members pay the SKU's member price, if lower, and no delivery fee.
        priced = price_order(
            session,
            user_id=user.id,
            sku_id=sku.id,
            offer_cents=sku.price_cents,
            qty=body.qty,
            delivery=DeliveryTerms.of(settings),
        )
        order = services.create_order(
            session,
            user_id=user.id,
            sku_id=sku.id,
            qty=body.qty,
            unit_price_cents=priced.unit_price_cents,
            delivery_fee_cents=priced.delivery_fee_cents,
            kind=OrderKind.REGULAR,
            station_id=body.station_id,
            pay_timeout_s=settings.order_pay_timeout_s,
        )
        risk.after_order(session, screening, order)
        return 201, OrderOut.model_validate(order).model_dump(mode="json")

    return idem.respond(session, user.id, body.model_dump(mode="json"), work)


@router.get("/api/v1/orders", response_model=list[OrderOut])
def my_orders(
    user: CurrentUser,
    session: SessionDep,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[Order]:
    """The caller's own orders, newest first."""
    query = select(Order).where(Order.user_id == user.id)
    if status is not None:
        query = query.where(Order.status == status)
    return list(session.scalars(query.order_by(Order.created_at.desc()).limit(limit)))


@router.get(
    "/api/v1/merchants/{merchant_id}/orders",
    response_model=list[OrderOut],
    responses=problems(401, 403, 404),
)
def merchant_orders(
    merchant_id: str,
    user: StaffOrAdmin,
    session: SessionDep,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Order]:
    """A merchant's orders, newest first (that merchant's staff, ops, admin)."""
    if user.role == "merchant_staff" and user.merchant_id != merchant_id:
        raise PermissionDeniedError("only this merchant's staff may list its orders")
    query = select(Order).where(Order.merchant_id == merchant_id)
    if status is not None:
        query = query.where(Order.status == status)
    return list(session.scalars(query.order_by(Order.created_at.desc()).limit(limit)))


@router.get("/api/v1/orders/{order_id}", response_model=OrderOut, responses=problems(401, 404))
def get_order(order_id: str, user: CurrentUser, session: SessionDep) -> Order:
    """One order: its shopper, the merchant's staff, ops and admins may read it."""
    return visible_order(session, order_id, user)


@router.get(
    "/api/v1/orders/{order_id}/transitions",
    response_model=list[TransitionOut],
    responses=problems(401, 404),
)
def get_history(order_id: str, user: CurrentUser, session: SessionDep) -> list[object]:
    """An order's transitions, oldest first: from, to, who, when and why."""
    visible_order(session, order_id, user)
    return list(services.history(session, order_id))


@router.post(
    "/api/v1/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses=problems(401, 403, 404, 409, 422),
)
def cancel_order(order_id: str, body: CancelIn, user: CurrentUser, session: SessionDep) -> Order:
    """Cancel: shoppers before it is confirmed; ops and admins whenever the rules allow.

    A paid order is refunded in full automatically.
    """
    order = visible_order(session, order_id, user)
    if user.role not in ("ops", "admin"):
        if order.user_id != user.id:
            raise PermissionDeniedError("only the shopper or ops may cancel an order")
        if not shopper_may_cancel(order.status, order.awaiting):
            raise IllegalTransitionError(
                f"a {order.status} order can no longer be cancelled by the shopper",
                from_status=order.status,
                to_status="cancelled",
            )
    order = services.transition(
        session, order, OrderStatus.CANCELLED, actor=user.actor, reason=body.reason
    )
    session.commit()
    return order


@router.post(
    "/api/v1/orders/{order_id}/transitions",
    response_model=OrderOut,
    responses=problems(401, 403, 404, 409, 422),
)
def force_transition(
    order_id: str, body: TransitionIn, user: OpsOrAdmin, session: SessionDep
) -> Order:
    """Ops: move an order along the state machine (illegal moves are 409; audited)."""
    order = services.transition(session, order_id, body.to, actor=user.actor, reason=body.reason)
    session.commit()
    return order
