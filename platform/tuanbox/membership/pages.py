"""Ops' membership pages on the dashboard (its cookie, /ops/...): look a member up by phone,
see the membership and refund it pro rata (the amount shown first, confirmed against the
amount refunded); list SKUs with their member price, set or clear one.

Pages render like /ops/licences (English, as the other ops pages); the buttons post JSON
through ops.js to actions that take the ops principal (`OpsUser`: same origin, SameSite
cookie, JSON only) and call the API's own operations, which audit every write."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tuanbox.accounts.errors import InvalidPhoneError
from tuanbox.accounts.models import User
from tuanbox.accounts.services import normalise_phone, user_by_phone
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.bounds import MAX_ORDER_CENTS, Id
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.console.forms import Problems
from tuanbox.crypto import PiiCipher
from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError
from tuanbox.membership import services
from tuanbox.membership import views as api
from tuanbox.membership.models import MemberPrice, MembershipTerm
from tuanbox.ops import auth
from tuanbox.ops.auth import OpsUser

router = APIRouter(tags=["ops"], include_in_schema=False)

PHONE_CHARS = 32
QUERY_CHARS = 100
SHOWN_SKUS = 100


def _page(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    from tuanbox.ops.views import templates

    return templates().TemplateResponse(
        request, name, context, status_code=status_code, headers={"Cache-Control": "no-store"}
    )


def _yuan(cents: int) -> str:
    return f"¥{cents // 100}.{cents % 100:02d}"


# --- membership: look up by phone, refund pro rata ---------------------------------------


@router.get("/ops/membership", response_model=None)
def membership_page(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    phone: str = Query("", max_length=200),
) -> HTMLResponse | RedirectResponse:
    """A member by phone (the blind index, as sign-in finds accounts): the membership, its
    terms and what a refund would give back now."""
    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    context: dict[str, Any] = {"user": user, "phone": phone, "error": None, "found": None}
    typed = phone.strip()
    if not typed:
        return _page(request, "membership.html", context)
    e164 = None
    if len(typed) <= PHONE_CHARS and "\x00" not in typed:
        try:
            e164 = normalise_phone(typed, settings.phone_default_region)
        except InvalidPhoneError:
            e164 = None
    if e164 is None:
        context["error"] = "That is not a phone number: type the 11 digits, or +country code."
        context["phone"] = typed[:PHONE_CHARS].replace("\x00", "")
        return _page(request, "membership.html", context, status_code=422)
    account = user_by_phone(session, PiiCipher(settings), e164)
    if account is None:
        context["error"] = "No account has this phone number."
        return _page(request, "membership.html", context, status_code=404)
    row = services.status(session, account.id)
    terms = session.scalars(
        select(MembershipTerm)
        .where(MembershipTerm.user_id == account.id, MembershipTerm.status != "pending")
        .order_by(MembershipTerm.created_at.desc(), MembershipTerm.id)
        .limit(20)
    ).all()
    quote = services.refund_quote(session, account.id)
    context["found"] = {
        "id": account.id,
        "role": account.role,
        "member": row is not None,
        "ends_at": row.ends_at if row is not None else None,
        "terms": terms,
        "quote": quote,
        "quote_text": _yuan(quote.cents),
    }
    return _page(request, "membership.html", context)


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The amount the page showed: refused (409) when the refund would now be another one.
    expected_cents: int = Field(ge=0, le=MAX_ORDER_CENTS)


@router.post("/ops/users/{user_id}/membership/refund")
def refund(
    user_id: Id, body: RefundIn, ops: OpsUser, session: SessionDep, settings: SettingsDep
) -> api.RefundOut:
    """The page's refund button: POST /api/v1/users/{id}/membership/refund (audited), once
    the amount it would refund is still the one ops confirmed."""
    if session.get(User, user_id) is None:
        raise NotFoundError("user not found")
    quote = services.refund_quote(session, user_id)
    if quote.cents != body.expected_cents:
        raise ConflictError(
            f"the refund is now {_yuan(quote.cents)}, not {_yuan(body.expected_cents)}: "
            "reload the page and confirm again"
        )
    return api.refund_membership(user_id, ops, session, settings)


# --- member prices ------------------------------------------------------------------------


@router.get("/ops/member-prices", response_model=None)
def member_prices_page(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    q: str = Query("", max_length=200),
) -> HTMLResponse | RedirectResponse:
    """SKUs (a product name to narrow them) with their price and member price."""
    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    typed = q.strip()
    context: dict[str, Any] = {"user": user, "q": typed, "error": None, "skus": []}
    if len(typed) > QUERY_CHARS or "\x00" in typed:
        context["error"] = f"Search by a product name of at most {QUERY_CHARS} characters."
        context["q"] = typed[:QUERY_CHARS].replace("\x00", "")
        return _page(request, "member_prices.html", context, status_code=422)
    query = (
        select(Sku, Product.name, Merchant.name, MemberPrice.price_cents)
        .join(Product, Product.id == Sku.product_id)
        .join(Merchant, Merchant.id == Product.merchant_id)
        .outerjoin(MemberPrice, MemberPrice.sku_id == Sku.id)
        .order_by(Product.name, Sku.name, Sku.id)
        .limit(SHOWN_SKUS)
    )
    if typed:
        escaped = typed.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Product.name.ilike(f"%{escaped}%", escape="\\"))
    context["skus"] = [
        {
            "id": sku.id,
            "name": f"{product} · {sku.name}",
            "merchant": merchant,
            "price": _yuan(sku.price_cents),
            "member_price": _yuan(member) if member is not None else None,
            "member_value": f"{member // 100}.{member % 100:02d}" if member is not None else "",
        }
        for sku, product, merchant, member in session.execute(query)
    ]
    return _page(request, "member_prices.html", context)


class MemberPriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    price: str = Field(max_length=40, description="yuan as typed: 18, 18.5, ¥18.50")


@router.post("/ops/skus/{sku_id}/member-price")
def set_member_price(
    sku_id: Id, body: MemberPriceIn, ops: OpsUser, session: SessionDep
) -> api.MemberPriceOut:
    """The page's save button: PUT /api/v1/skus/{id}/member-price (audited) with the typed
    yuan read as the console's forms read money."""
    problems = Problems(lambda text: text)
    cents = problems.money(body.price, "Member price")
    if cents is not None and cents < 1:
        problems.add("Member price: at least ¥0.01.")
    if problems or cents is None or cents < 1:
        raise InvalidInputError(" ".join(problems.items), field="price")
    return api.put_member_price(sku_id, api.MemberPriceIn(price_cents=cents), ops, session)


class ClearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


@router.post("/ops/skus/{sku_id}/member-price/clear", status_code=204)
def clear_member_price(sku_id: Id, _body: ClearIn, ops: OpsUser, session: SessionDep) -> Response:
    """The page's clear button: DELETE /api/v1/skus/{id}/member-price (audited)."""
    return api.delete_member_price(sku_id, ops, session)
