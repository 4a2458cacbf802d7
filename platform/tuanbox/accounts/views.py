"""Accounts API: OTP request, token grants (otp, password, refresh), staff creation, me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Path, Request
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse
from sqlalchemy import select

from tuanbox.accounts import admin as accounts_admin
from tuanbox.accounts import services
from tuanbox.accounts.deps import Admin, CurrentUser, Principal
from tuanbox.accounts.models import Address, User
from tuanbox.accounts.revocation import Revocations
from tuanbox.accounts.schemas import (
    AddressIn,
    AddressOut,
    LogoutRequest,
    MeOut,
    OtpGrant,
    OtpRequest,
    OtpSent,
    PasswordGrant,
    StaffCreate,
    TokenRequest,
    TokenResponse,
    UserOut,
    UserStatusChange,
)
from tuanbox.accounts.signin import DEVICE_ID_PATTERN, SignInGuard
from tuanbox.accounts.tokens import (
    issue_access_token,
    issue_refresh_token,
    revoke_refresh_family,
    rotate_refresh_token,
)
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.crypto import PiiCipher
from tuanbox.errors import NotFoundError
from tuanbox.idempotency.deps import Idempotent
from tuanbox.notifications.deps import SmsSenderDep
from tuanbox.ratelimit import get_redis, limiter_for
from tuanbox.ratelimit.deps import client_ip
from tuanbox.risk import services as risk

router = APIRouter(prefix="/api/v1", tags=["accounts"])

DeviceId = Annotated[
    str | None,
    Header(
        alias="X-Device-ID",
        pattern=DEVICE_ID_PATTERN,
        description="The app's random install id (8-64 of A-Z a-z 0-9 . _ : -): sign-in "
        "limits count per device before they count per IP.",
        examples=["ios-6f1c0b2e9d4a4c1e"],
    ),
]
UserId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,36}$", examples=["9b2f6c1e-…"])]

TOKEN_EXAMPLES: dict[str, Example] = {
    "otp": {
        "summary": "Shopper: phone and one-time code",
        "value": {"grant_type": "otp", "phone": "+8613800138000", "code": "123456"},
    },
    "password": {
        "summary": "Staff: login and password",
        "value": {"grant_type": "password", "login": "ops.lin", "password": "correct horse 42"},
    },
    "refresh_token": {
        "summary": "Any user: rotate a refresh token",
        "value": {"grant_type": "refresh_token", "refresh_token": "rt_8Jc2…"},
    },
}


@router.post(
    "/auth/otp", response_model=OtpSent, status_code=202, responses=problems(422, 429, 503)
)
def request_otp(
    body: OtpRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    sms: SmsSenderDep,
    device_id: DeviceId = None,
) -> OtpSent:
    """Text a one-time sign-in code (limited per phone and per device first, then per IP).

    The phone may be typed as `+8613800138000`, `8613800138000`, `13800138000` or
    `+86 138-0013-8000`: all are one account. Invalid numbers are 422 `INVALID_PHONE`.
    """
    phone = services.normalise_phone(body.phone, settings.phone_default_region)
    limiter = limiter_for(request)
    limiter.check(
        f"otp:phone:{PiiCipher(settings).blind_index(phone)}", settings.otp_per_phone_per_hour, 3600
    )
    if device_id is not None:
        limiter.check(f"otp:device:{device_id}", settings.otp_per_device_per_hour, 3600)
    limiter.check(f"otp:ip:{client_ip(request)}", settings.otp_per_ip_per_hour, 3600)
    services.request_otp(session, settings, phone, sms=sms)
    session.commit()
    return OtpSent(expires_in=settings.otp_ttl_s)


@router.post(
    "/auth/token", response_model=TokenResponse, responses=problems(401, 403, 422, 429, 503)
)
def token(
    body: Annotated[TokenRequest, Body(openapi_examples=TOKEN_EXAMPLES)],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    device_id: DeviceId = None,
) -> TokenResponse:
    """Exchange an OTP, a staff password or a refresh token for an access + refresh token.

    Limited per phone and per device (`X-Device-ID`) first, then generously per IP (429 with
    `Retry-After`). A login whose password fails too often is locked for a while; a locked
    login, an unknown one and a wrong password all answer the same 401 `INVALID_CREDENTIALS`.
    Risk control may refuse a shopper's sign-in (403 `RISK_BLOCKED`) or queue it for review.
    """
    guard = SignInGuard(get_redis(request), settings)
    if isinstance(body, OtpGrant):
        phone = services.normalise_phone(body.phone, settings.phone_default_region)
        guard.check_phone(PiiCipher(settings).blind_index(phone))
    guard.check_device(device_id)
    guard.check_ip(client_ip(request))
    if isinstance(body, OtpGrant):
        user = services.verify_otp(session, settings, body.phone, body.code)
        refresh = issue_refresh_token(session, settings, user)
    elif isinstance(body, PasswordGrant):
        user = guard.password(session, body.login, body.password, ip=client_ip(request))
        refresh = issue_refresh_token(session, settings, user)
    else:
        user, refresh = rotate_refresh_token(session, settings, body.refresh_token)
    if isinstance(body, OtpGrant):
        # Risk control counts sign-ins and sign-ups per IP and device; a block is a 403.
        risk.signed_in(session, settings, user.id, ip=client_ip(request), device_id=device_id)
    principal = Principal(
        id=user.id, role=user.role, merchant_id=user.merchant_id, token_version=user.token_version
    )
    session.commit()
    return TokenResponse(
        access_token=issue_access_token(settings, principal),
        expires_in=settings.access_token_ttl_s,
        refresh_token=refresh,
        user=services.user_out(settings, user),
    )


@router.post("/auth/logout", status_code=204, responses=problems(401, 422))
def logout(body: LogoutRequest, session: SessionDep, settings: SettingsDep) -> None:
    """Revoke a refresh token and every token rotated from it (access tokens simply expire)."""
    revoke_refresh_family(session, settings, body.refresh_token)
    session.commit()


@router.post(
    "/users", response_model=UserOut, status_code=201, responses=problems(401, 403, 409, 422)
)
def create_staff(
    body: StaffCreate, admin: Admin, session: SessionDep, settings: SettingsDep
) -> UserOut:
    """Create a merchant-staff, courier, ops or admin account (admin only, audited).

    Merchant staff and couriers belong to the merchant named by `merchant_id`; a courier
    reads only that merchant's run sheet lines and nothing else of the merchant.
    """
    user = services.create_staff(
        session,
        admin.actor,
        role=body.role,
        login=body.login,
        password=body.password,
        merchant_id=body.merchant_id,
        display_name=body.display_name,
        settings=settings,
    )
    session.commit()
    return services.user_out(settings, user)


@router.post(
    "/users/{user_id}/disable",
    response_model=UserOut,
    responses=problems(401, 403, 404, 409, 422, 503),
)
def disable_user(
    user_id: UserId,
    body: UserStatusChange,
    admin: Admin,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> UserOut:
    """Disable an account (admin only, audited): sign-in refused, refresh tokens revoked, and
    its access tokens refused from the next request on, on every replica (401 `TOKEN_REVOKED`).
    Disabling yourself is 409 `CANNOT_DISABLE_SELF`."""
    revocations = Revocations(get_redis(request), settings.access_token_ttl_s)
    user = accounts_admin.disable_user(session, revocations, admin.actor, user_id, body.reason)
    session.commit()
    return services.user_out(settings, user)


@router.post(
    "/users/{user_id}/enable",
    response_model=UserOut,
    responses=problems(401, 403, 404, 409, 422),
)
def enable_user(
    user_id: UserId,
    body: UserStatusChange,
    admin: Admin,
    session: SessionDep,
    settings: SettingsDep,
) -> UserOut:
    """Let a disabled account sign in again (admin only, audited); tokens issued before it was
    disabled stay refused. An erased account cannot be enabled (409 `ACCOUNT_ERASED`)."""
    user = accounts_admin.enable_user(session, admin.actor, user_id, body.reason)
    session.commit()
    return services.user_out(settings, user)


@router.get("/me", response_model=MeOut, responses=problems(401))
def me(user: CurrentUser, session: SessionDep, settings: SettingsDep) -> MeOut:
    """The signed-in user, with their phone number decrypted."""
    row = session.get(User, user.id)
    if row is None:
        raise NotFoundError("user not found")
    return MeOut(
        id=row.id,
        role=row.role,
        merchant_id=row.merchant_id,
        display_name=services.display_name_of(settings, row),
        phone=services.phone_of(settings, row),
    )


@router.post(
    "/me/addresses", response_model=AddressOut, status_code=201, responses=problems(401, 409, 422)
)
def add_address(
    body: AddressIn,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    idem: Idempotent,
) -> JSONResponse:
    """Save a delivery address (stored encrypted); an `Idempotency-Key` makes a retry safe
    (the reply kept for it is encrypted too)."""

    def work() -> tuple[int, object]:
        row = services.add_address(session, settings, user.id, body.text, body.label)
        risk.address_added(session, settings, user.id, body.text)
        return 201, AddressOut(id=row.id, label=row.label, text=body.text).model_dump()

    return idem.respond(session, user.id, body.model_dump(), work)


@router.get("/me/addresses", response_model=list[AddressOut], responses=problems(401))
def list_addresses(
    user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> list[AddressOut]:
    """Your saved addresses, decrypted."""
    rows = session.scalars(select(Address).where(Address.user_id == user.id)).all()
    return [
        AddressOut(id=r.id, label=r.label, text=services.read_address(settings, r)) for r in rows
    ]
