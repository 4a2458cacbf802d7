"""Membership API: the shopper's membership and buying or renewing it through the payment
port; ops refund a membership pro rata and set member prices (audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tuanbox.accounts.deps import OpsOrAdmin, Shopper
from tuanbox.accounts.models import User
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import Actor, record
from tuanbox.bounds import MAX_ORDER_CENTS, Id
from tuanbox.catalog.models import Sku
from tuanbox.coupons.domain import aware
from tuanbox.errors import NotFoundError
from tuanbox.membership import services
from tuanbox.membership.models import MembershipTerm
from tuanbox.payments.provider import get_provider

router = APIRouter(prefix="/api/v1", tags=["membership"])


class TermOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    status: str
    amount_cents: int
    days: int
    starts_at: datetime | None
    ends_at: datetime | None
    refunded_cents: int


class MembershipOut(BaseModel):
    member: bool
    ends_at: datetime | None
    price_cents: int
    days: int
    perks: list[str]
    terms: list[TermOut]


class PurchaseIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"provider": "sim"}, {}]})

    provider: Annotated[str | None, Field(pattern=r"^[a-z]{2,20}$")] = None


class PurchaseOut(BaseModel):
    term_id: str
    amount_cents: int
    checkout_url: str


class RefundOut(BaseModel):
    cents: int
    days: int
    terms: list[str]


class MemberPriceIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"price_cents": 1800}]})

    price_cents: int = Field(ge=1, le=MAX_ORDER_CENTS)


class MemberPriceOut(BaseModel):
    sku_id: str
    price_cents: int


PERKS = ["free_delivery", "member_prices", "flash_early_access"]


def membership_of(session: SessionDep, settings: SettingsDep, user_id: str) -> MembershipOut:
    row = services.status(session, user_id)
    terms = session.scalars(
        select(MembershipTerm)
        .where(MembershipTerm.user_id == user_id, MembershipTerm.status != "pending")
        .order_by(MembershipTerm.created_at.desc(), MembershipTerm.id)
        .limit(20)
    )
    return MembershipOut(
        member=row is not None,
        ends_at=aware(row.ends_at) if row else None,
        price_cents=settings.membership_price_cents,
        days=settings.membership_days,
        perks=PERKS,
        terms=[TermOut.model_validate(t) for t in terms],
    )


@router.get("/me/membership", response_model=MembershipOut, responses=problems(401, 403))
def my_membership(user: Shopper, session: SessionDep, settings: SettingsDep) -> MembershipOut:
    """Whether the shopper is a member, until when, the price and the paid terms."""
    return membership_of(session, settings, user.id)


@router.post(
    "/me/membership/purchases",
    response_model=PurchaseOut,
    status_code=201,
    responses=problems(401, 403, 404, 422),
)
def buy_membership(
    body: PurchaseIn, user: Shopper, session: SessionDep, settings: SettingsDep
) -> PurchaseOut:
    """Buy a term, or renew (the new term starts where the current one ends): returns the
    provider's hosted payment page. A pending purchase at the same price is reused."""
    provider = get_provider(body.provider or settings.default_payment_provider, settings)
    term, url = services.start_purchase(session, settings, user.id, provider)
    session.commit()
    return PurchaseOut(term_id=term.id, amount_cents=term.amount_cents, checkout_url=url)


@router.post(
    "/users/{user_id}/membership/refund",
    response_model=RefundOut,
    responses=problems(401, 403, 404, 409, 422),
)
def refund_membership(
    user_id: str, user: OpsOrAdmin, session: SessionDep, settings: SettingsDep
) -> RefundOut:
    """Ops: end a shopper's membership now and refund the unused whole days of each paid term
    pro rata (a renewal not yet begun in full), through the provider that took it. Audited."""
    if session.get(User, user_id) is None:
        raise NotFoundError("user not found")
    terms = session.scalars(
        select(MembershipTerm.provider)
        .where(MembershipTerm.user_id == user_id, MembershipTerm.status == "paid")
        .limit(1)
    ).first()
    provider = get_provider(terms or settings.default_payment_provider, settings)
    done = services.refund(session, user_id, provider)
    record(
        session,
        Actor(id=user.id, role=user.role),
        "membership.refund",
        "user",
        user_id,
        after={"cents": done.cents, "days": done.days},
    )
    session.commit()
    return RefundOut(cents=done.cents, days=done.days, terms=list(done.terms))


@router.put(
    "/skus/{sku_id}/member-price",
    response_model=MemberPriceOut,
    responses=problems(401, 403, 404, 422),
)
def put_member_price(
    sku_id: str, body: MemberPriceIn, user: OpsOrAdmin, session: SessionDep
) -> MemberPriceOut:
    """Ops: what members pay for one unit of this SKU. Audited."""
    if session.get(Sku, sku_id) is None:
        raise NotFoundError("SKU not found")
    row = services.set_member_price(session, sku_id, body.price_cents, user.id)
    record(
        session,
        Actor(id=user.id, role=user.role),
        "membership.member_price",
        "sku",
        sku_id,
        after={"price_cents": body.price_cents},
    )
    session.commit()
    return MemberPriceOut(sku_id=sku_id, price_cents=row.price_cents)


@router.delete(
    "/skus/{sku_id}/member-price", status_code=204, responses=problems(401, 403, 404, 422)
)
def delete_member_price(sku_id: Id, user: OpsOrAdmin, session: SessionDep) -> Response:
    """Ops: members pay this SKU's own price again; a SKU without one is left as it is (the
    same answer). Audited, with the member price it had (null: none)."""
    if session.get(Sku, sku_id) is None:
        raise NotFoundError("SKU not found")
    before = services.clear_member_price(session, sku_id)
    record(
        session,
        Actor(id=user.id, role=user.role),
        "membership.member_price.clear",
        "sku",
        sku_id,
        before={"price_cents": before},
    )
    session.commit()
    return Response(status_code=204)
