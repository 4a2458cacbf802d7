"""Your personal data: set your name, download everything we hold, erase your account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts import services as accounts
from tuanbox.accounts.deps import CurrentUser, Shopper
from tuanbox.accounts.models import User
from tuanbox.accounts.revocation import Revocations
from tuanbox.accounts.schemas import MeOut, OtpSent
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.crypto import PiiCipher
from tuanbox.errors import ConflictError, NotFoundError
from tuanbox.notifications.deps import SmsSenderDep
from tuanbox.privacy.erasure import erase
from tuanbox.privacy.export import export
from tuanbox.ratelimit import get_redis, limiter_for, rate_limit
from tuanbox.ratelimit.deps import client_ip

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


@router.post(
    "/me/erasure-code",
    response_model=OtpSent,
    status_code=202,
    responses=problems(401, 403, 409, 429, 503),
)
def request_erasure_code(
    user: Shopper,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    sms: SmsSenderDep,
) -> OtpSent:
    """Text a one-time erasure code to your phone; `DELETE /api/v1/me` needs it.

    A token alone cannot erase an account (a stolen one lasts its 15 minutes): the code
    proves the phone is at hand. It is only for erasure (a sign-in code does not erase, an
    erasure code does not sign in), dies after `expires_in` seconds, after use, after too
    many wrong tries, or when another code is texted to the phone. Shares the sign-in codes'
    limits per phone and per IP (429 with `Retry-After`)."""
    row = session.get(User, user.id)
    phone = accounts.phone_of(settings, row) if row is not None else None
    if row is None or phone is None:
        raise ConflictError("this account has no phone to text a code to")
    limiter = limiter_for(request)
    limiter.check(
        f"otp:phone:{PiiCipher(settings).blind_index(phone)}", settings.otp_per_phone_per_hour, 3600
    )
    limiter.check(f"otp:ip:{client_ip(request)}", settings.otp_per_ip_per_hour, 3600)
    accounts.request_otp(session, settings, phone, sms=sms, purpose="erasure")
    session.commit()
    return OtpSent(expires_in=settings.otp_ttl_s)


ErasureCode = Annotated[
    str,
    Header(
        alias="X-Erasure-Code",
        min_length=1,
        max_length=16,
        description="The code texted by `POST /api/v1/me/erasure-code`.",
        examples=["123456"],
    ),
]


@router.delete("/me", response_model=ErasedOut, responses=problems(401, 403, 409, 422, 429, 503))
def erase_me(
    user: Shopper,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    code: ErasureCode,
) -> ErasedOut:
    """Erase your account: phone, name, addresses, notices and sign-in codes are deleted and
    every token stops working; your orders stay, under the account id, for the books.

    Needs the code texted by `POST /api/v1/me/erasure-code` in `X-Erasure-Code`: missing is
    422; wrong, expired, spent or a sign-in code is 422 `ERASURE_CODE_INVALID` (each wrong
    try counts; too many kill the code, 429 `OTP_LOCKED`).

    Unpaid orders are cancelled. While an order is still in progress (paid, on its way, in a
    locker, on hold or being returned) this is 409 `ORDERS_IN_FLIGHT`, listing them (the
    code stays usable until it expires). The phone number may then sign up again, as a new
    account."""
    row = session.get(User, user.id, with_for_update=True)
    if row is None:
        raise NotFoundError("user not found")
    accounts.verify_erasure_code(session, settings, row, code)
    revocations = Revocations(get_redis(request), settings.access_token_ttl_s)
    done = erase(session, settings, revocations, user.actor, user.id)
    session.commit()
    return ErasedOut(
        erased_at=done.erased_at,
        orders_kept=done.orders_kept,
        orders_cancelled=done.orders_cancelled,
    )
