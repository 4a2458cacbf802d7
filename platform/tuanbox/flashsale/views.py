"""Flash-sale API: create a sale (merchant staff), reserve units (shoppers, rate limited)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts.deps import Staff
from tuanbox.api.burst import BurstInputs, BurstRoute, HeaderSpec, burst_shopper, problem
from tuanbox.api.deps import SessionDep, session_source_for
from tuanbox.api.openapi_problems import problems
from tuanbox.api.redis_async import redis_for
from tuanbox.audit.services import record
from tuanbox.bounds import Id, PriceCents, Qty
from tuanbox.db.base import utcnow
from tuanbox.errors import PermissionDeniedError, TuanboxError
from tuanbox.flashsale import admission, services
from tuanbox.flashsale.counters import AsyncFlashCounters, FlashCounters
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy.services import as_utc
from tuanbox.ratelimit import get_redis
from tuanbox.ratelimit.deps import client_ip

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


def hot_path(request: Request) -> admission.HotPath:
    """The process's reservation hot path (its caches), made on first use."""
    path: admission.HotPath | None = getattr(request.app.state, "flash_hot_path", None)
    if path is None:
        path = admission.HotPath(request.app.state.settings)
        request.app.state.flash_hot_path = path
    return path


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


RESERVE_INPUTS = BurstInputs(
    ReserveIn,
    path=("sale_id",),
    headers=(
        HeaderSpec(
            "Idempotency-Key",
            8,
            64,
            "Required: a repeated key returns the same reservation.",
            "c0ffee00-4b1d-4d2e-9a3f-5e6f7a8b9c0d",
        ),
    ),
)


@router.post(
    "/flash-sales/{sale_id}/reservations",
    response_model=ReservationOut,
    status_code=201,
    responses=problems(401, 403, 404, 409, 422, 429),
    openapi_extra=RESERVE_INPUTS.openapi(),
)
async def reserve(request: Request) -> Response:
    """Reserve units (shoppers); the order is created pending payment. 409 `SOLD_OUT` when
    gone, 429 with `Retry-After` past the per-user or per-IP limit.

    The `Idempotency-Key` is the duplicate check: a repeated key returns the same reservation.
    Body `ReserveIn`: `qty` (1 by default) and an optional pickup `station_id`.
    """
    path, headers, body = await RESERVE_INPUTS.parse(request)
    user = burst_shopper(request)
    source = session_source_for(request)
    req = admission.Request(
        sale_id=path["sale_id"],
        user=user,
        key=headers["Idempotency-Key"],
        qty=body.qty,
        station_id=body.station_id,
        client_ip=client_ip(request),
        now=utcnow(),
    )
    async with redis_for(request) as client:
        cached: AsyncFlashCounters | None = getattr(request.app.state, "flash_async", None)
        if cached is None or cached.client is not client:
            cached = request.app.state.flash_async = AsyncFlashCounters(client)
        try:
            status, out = await hot_path(request).reserve(
                req, cached, counters_for(request), source
            )
        except TuanboxError as exc:
            if exc.status >= 500:
                raise  # logged by the app's handler
            return problem(exc, request.scope["path"])
    return JSONResponse(out, status_code=status)


# Served ahead of the included routers (see `tuanbox.api.burst.BurstRoute`); the route above
# documents it.
burst_routes = (BurstRoute("/api/v1/flash-sales/{sale_id}/reservations", reserve, ("POST",)),)
