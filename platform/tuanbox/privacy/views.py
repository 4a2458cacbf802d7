"""Your personal data: set your name, download everything we hold, erase your account."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts import services as accounts
from tuanbox.accounts.deps import CurrentUser, Shopper
from tuanbox.accounts.models import User
from tuanbox.accounts.revocation import Revocations
from tuanbox.accounts.schemas import MeOut
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.errors import NotFoundError
from tuanbox.privacy.erasure import erase
from tuanbox.privacy.export import export
from tuanbox.ratelimit import get_redis, rate_limit

router = APIRouter(prefix="/api/v1", tags=["privacy"])


class MeUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"display_name": "小王"}]})

    # Stored encrypted; empty or null removes it.
    display_name: str | None = Field(default=None, max_length=100)


class ErasedOut(BaseModel):
    erased_at: datetime
    # Kept for the books, under the account id; nothing in them names you.
    orders_kept: int
    orders_cancelled: list[str]


@router.patch("/me", response_model=MeOut, responses=problems(401, 422))
def update_me(
    body: MeUpdate, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> MeOut:
    """Set (or remove) your display name; it is stored encrypted."""
    row = session.get(User, user.id, with_for_update=True)
    if row is None:
        raise NotFoundError("user not found")
    accounts.set_display_name(settings, row, body.display_name)
    session.commit()
    return MeOut(
        **accounts.user_out(settings, row).model_dump(), phone=accounts.phone_of(settings, row)
    )


@router.get(
    "/me/export",
    responses={
        200: {
            "description": "Your data as one JSON document (`format`: tuanbox.export/1).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **problems(401, 429),
    },
    dependencies=[
        Depends(rate_limit("me-export", per_user=(lambda s: s.export_per_user_per_hour, 3600)))
    ],
)
def export_me(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> JSONResponse:
    """Everything personal we hold about you, decrypted: account, addresses, orders (with
    their history and refunds), returns and notices. Limited per account per hour."""
    document = export(session, settings, user.id)
    return JSONResponse(
        document,
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'attachment; filename="tuanbox-export.json"',
        },
    )


@router.delete("/me", response_model=ErasedOut, responses=problems(401, 403, 409, 503))
def erase_me(
    user: Shopper, request: Request, session: SessionDep, settings: SettingsDep
) -> ErasedOut:
    """Erase your account: phone, name, addresses, notices and sign-in codes are deleted and
    every token stops working; your orders stay, under the account id, for the books.

    Unpaid orders are cancelled. While an order is still in progress (paid, on its way, in a
    locker, on hold or being returned) this is 409 `ORDERS_IN_FLIGHT`, listing them. The
    phone number may then sign up again, as a new account."""
    revocations = Revocations(get_redis(request), settings.access_token_ttl_s)
    done = erase(session, settings, revocations, user.actor, user.id)
    session.commit()
    return ErasedOut(
        erased_at=done.erased_at,
        orders_kept=done.orders_kept,
        orders_cancelled=done.orders_cancelled,
    )
