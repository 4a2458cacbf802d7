"""Flash-sale API: create a sale (merchant staff), reserve units (shoppers, rate limited)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import Principal, Staff
from tuanbox.accounts.revocation import ensure_current
from tuanbox.accounts.tokens import decode_access_token
from tuanbox.api.deps import SessionDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import record
from tuanbox.bounds import Id, PriceCents, Qty
from tuanbox.db.base import utcnow
from tuanbox.errors import AuthenticationError, PermissionDeniedError
from tuanbox.flashsale import services
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.services import as_utc
from tuanbox.ratelimit import get_redis, limiter_for
from tuanbox.ratelimit.deps import client_ip
from tuanbox.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["flash-sales"])


class SaleIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "sku_id": "3f1c…",
                    "title": "Midnight durian, 100 boxes",
                    "price_cents": 990,
                    "stock_cap": 100,
                    "per_user_limit": 1,
                    "starts_at": "2026-12-01T20:00:00Z",
                    "ends_at": "2026-12-01T20:10:00Z",
                }
            ]
        }
    )

    sku_id: Id
    title: str = Field(min_length=1, max_length=200)
    price_cents: PriceCents
    stock_cap: int = Field(ge=1, le=1_000_000)
    per_user_limit: Qty = 1
    starts_at: datetime
    ends_at: datetime


class SaleOut(BaseModel):
    id: str
    sku_id: str
    title: str
    price_cents: int
    stock_cap: int
    remaining: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime


class ReserveIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"qty": 1, "station_id": "st-001"}]})

    qty: Qty = 1
    # Where the order is picked up; without one it cannot go to a locker.
    station_id: str | None = Field(default=None, min_length=1, max_length=36)


class ReservationOut(BaseModel):
    reservation_id: str
    order_id: str
    qty: int
    remaining: int
    replayed: bool


def sale_out(s: FlashSale) -> SaleOut:
    return SaleOut(
        id=s.id,
        sku_id=s.sku_id,
        title=s.title,
        price_cents=s.price_cents,
        stock_cap=s.stock_cap,
        remaining=s.remaining,
        per_user_limit=s.per_user_limit,
        starts_at=as_utc(s.starts_at),
        ends_at=as_utc(s.ends_at),
    )


def counters_for(request: Request) -> FlashCounters:
    """The app's flash counters, sharing the rate limiter's Redis client (made on first use)."""
    counters: FlashCounters | None = getattr(request.app.state, "flash_counters", None)
    if counters is None:
        counters = FlashCounters(get_redis(request))
        request.app.state.flash_counters = counters
    return counters


def terms_for(request: Request) -> services.TermsCache:
    cache: services.TermsCache | None = getattr(request.app.state, "flash_terms", None)
    if cache is None:
        cache = services.TermsCache()
        request.app.state.flash_terms = cache
    return cache


def flash_rate_limit(request: Request, user: Principal, settings: Settings) -> None:
    """Per-user, then per-IP windows from settings; 429 with Retry-After when exceeded. A
    shopper refused by their own window spends nothing of their (maybe carrier-NAT) IP's."""
    limiter = limiter_for(request)
    limiter.check(f"flash:user:{user.id}", settings.flash_per_user_per_10s, 10)
    limiter.check(f"flash:ip:{client_ip(request)}", settings.flash_per_ip_per_10s, 10)


_bearer = HTTPBearer(auto_error=False, description="Access token from POST /api/v1/auth/token")


def shopper_from(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The calling shopper, decoded on the event loop (pure CPU, tens of microseconds).

    The hot path avoids the generic sync dependencies: each of them costs a thread hop,
    and under a flash-sale burst those hops, not Redis or the DB, dominate the latency.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationError("a bearer access token is required")
    principal = decode_access_token(request.app.state.settings, credentials.credentials)
    if principal.role != "shopper":
        raise PermissionDeniedError("this action needs one of the roles: shopper")
    request.state.principal = principal
    return principal


@router.post(
    "/flash-sales",
    response_model=SaleOut,
    status_code=201,
    responses=problems(401, 403, 422),
)
def create_sale(body: SaleIn, user: Staff, session: SessionDep, request: Request) -> SaleOut:
    """Create a time-boxed flash sale with a stock cap for one of your merchant's SKUs."""
    if user.merchant_id is None:
        raise PermissionDeniedError("only staff of a merchant can create its flash sales")
    sale = services.create_sale(
        session,
        merchant_id=user.merchant_id,
        actor_id=user.id,
        spec=services.SaleSpec(**body.model_dump()),
    )
    record(
        session,
        user.actor,
        "flash_sale.create",
        "flash_sale",
        sale.id,
        details={"sku_id": sale.sku_id, "title": sale.title},
        after=body.model_dump(mode="json", exclude={"sku_id", "title"}),
    )
    session.commit()
    services.load_counters(session, counters_for(request), sale)
    return sale_out(sale)


@router.get("/flash-sales/{sale_id}", response_model=SaleOut, responses=problems(404))
def get_sale(sale_id: str, session: SessionDep) -> SaleOut:
    """A flash sale and the units the database still has."""
    return sale_out(services.get_sale(session, sale_id))


@router.post(
    "/flash-sales/{sale_id}/reservations",
    response_model=ReservationOut,
    status_code=201,
    responses=problems(401, 403, 404, 409, 422, 429),
)
async def reserve(
    sale_id: str,
    body: ReserveIn,
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=8,
            max_length=64,
            description="Required: a repeated key returns the same reservation.",
            examples=["c0ffee00-4b1d-4d2e-9a3f-5e6f7a8b9c0d"],
        ),
    ],
) -> ReservationOut:
    """Reserve units (shoppers); the order is created pending payment. 409 `SOLD_OUT` when
    gone, 429 with `Retry-After` past the per-user or per-IP limit.

    The `Idempotency-Key` is the duplicate check: a repeated key returns the same reservation.
    """
    user = shopper_from(request, credentials)
    return await run_in_threadpool(
        _reserve, request, session, user, sale_id, body.qty, idempotency_key, body.station_id
    )


def _reserve(
    request: Request,
    session: Session,
    user: Principal,
    sale_id: str,
    qty: int,
    key: str,
    station_id: str | None = None,
) -> ReservationOut:
    """The blocking part (rate limits, Redis, DB) in one thread hop; the session connects
    to the DB only when Redis admitted the buyer."""
    settings: Settings = request.app.state.settings
    ensure_current(request, user)  # one Redis GET: a disabled shopper's token stops here
    flash_rate_limit(request, user, settings)
    result = services.reserve(
        session,
        counters_for(request),
        sale_id=sale_id,
        user_id=user.id,
        request_id=key,
        qty=qty,
        now=utcnow(),
        terms_cache=terms_for(request),
        pay_timeout_s=settings.order_pay_timeout_s,
        station_id=station_id,
    )
    return ReservationOut(**vars(result))
