"""Orders API for merchants: accept or reject paid orders; the merchant's acceptance policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts.deps import Principal, require_roles
from tuanbox.api.deps import SessionDep
from tuanbox.api.openapi_problems import problems
from tuanbox.catalog.models import Merchant
from tuanbox.errors import NotFoundError
from tuanbox.orders import acceptance
from tuanbox.orders.domain import AcceptanceMode, LapsePolicy
from tuanbox.orders.models import Order
from tuanbox.orders.schemas import OrderOut
from tuanbox.orders.views import visible_order

router = APIRouter(tags=["orders"])
MerchantStaffOrAdmin = Annotated[Principal, Depends(require_roles("merchant_staff", "admin"))]


class RejectIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "out of stock today"}]})

    reason: str = Field(min_length=3, max_length=400)


class AcceptancePolicyIO(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"mode": "manual", "window_s": 7200, "lapse": "refund"}]}
    )

    mode: AcceptanceMode = Field(description="auto: confirmed on payment; manual: staff accept")
    window_s: int = Field(
        default=7200,
        ge=acceptance.MIN_WINDOW_S,
        le=acceptance.MAX_WINDOW_S,
        description="Seconds staff have to accept a paid order (manual mode)",
    )
    lapse: LapsePolicy = Field(
        default=LapsePolicy.REFUND, description="At the deadline: confirm, or cancel and refund"
    )


def _merchant_order(session: SessionDep, order_id: str, user: Principal) -> Order:
    """The order, if the caller is its merchant's staff (or an admin); 404 otherwise."""
    order = visible_order(session, order_id, user)
    if user.role != "admin" and not user.staff_of(order.merchant_id):
        raise NotFoundError("order not found")
    return order


@router.post(
    "/api/v1/orders/{order_id}/accept",
    response_model=OrderOut,
    responses=problems(401, 403, 404, 409, 422),
)
def accept_order(order_id: str, user: MerchantStaffOrAdmin, session: SessionDep) -> Order:
    """Merchant staff accept a paid order awaiting them: confirmed, it joins a delivery wave."""
    _merchant_order(session, order_id, user)
    order = acceptance.accept(session, order_id, actor=user.actor)
    session.commit()
    return order


@router.post(
    "/api/v1/orders/{order_id}/reject",
    response_model=OrderOut,
    responses=problems(401, 403, 404, 409, 422),
)
def reject_order(
    order_id: str, body: RejectIn, user: MerchantStaffOrAdmin, session: SessionDep
) -> Order:
    """Merchant staff reject a paid order awaiting them: cancelled and refunded in full."""
    _merchant_order(session, order_id, user)
    order = acceptance.reject(session, order_id, actor=user.actor, reason=body.reason)
    session.commit()
    return order


def _own_merchant(session: SessionDep, merchant_id: str, user: Principal) -> Merchant:
    merchant = session.get(Merchant, merchant_id)
    if merchant is None or (user.role != "admin" and not user.staff_of(merchant_id)):
        raise NotFoundError("merchant not found")
    return merchant


@router.get(
    "/api/v1/merchants/{merchant_id}/order-acceptance",
    response_model=AcceptancePolicyIO,
    responses=problems(401, 403, 404),
)
def get_policy(
    merchant_id: str, user: MerchantStaffOrAdmin, session: SessionDep
) -> AcceptancePolicyIO:
    """How this merchant's paid regular and flash-sale orders get confirmed."""
    policy = acceptance.policy_of(_own_merchant(session, merchant_id, user))
    return AcceptancePolicyIO(mode=policy.mode, window_s=policy.window_s, lapse=policy.lapse)


@router.put(
    "/api/v1/merchants/{merchant_id}/order-acceptance",
    response_model=AcceptancePolicyIO,
    responses=problems(401, 403, 404, 422),
)
def put_policy(
    merchant_id: str, body: AcceptancePolicyIO, user: MerchantStaffOrAdmin, session: SessionDep
) -> AcceptancePolicyIO:
    """Set the merchant's acceptance policy (its staff or an admin; audited)."""
    _own_merchant(session, merchant_id, user)
    policy = acceptance.AcceptancePolicy(body.mode, body.window_s, body.lapse)
    acceptance.set_policy(session, merchant_id, policy, actor=user.actor)
    session.commit()
    return body
