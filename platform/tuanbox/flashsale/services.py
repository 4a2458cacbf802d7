"""Flash-sale use cases: create a sale, reserve (Redis admits, the DB records), reconcile.

The reservation path is: one Lua call (stock, per-user limit, duplicate request id) → one
DB transaction (guarded `UPDATE flash_sales SET remaining = remaining - n WHERE remaining
>= n`, the per-user total, the reservation row and the order). If the DB step fails for any
reason the Redis reservation is given back (compensation), so Redis never keeps stock the
DB does not have. The DB is the record; `reconcile` repairs Redis from it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError, TuanboxError
from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.lua import Held, ReserveStatus
from tuanbox.flashsale.models import FlashSale, Reservation, UserTotal
from tuanbox.groupbuy.services import as_utc, insert_for
from tuanbox.membership.pricing import (
    NO_FEE,
    DeliveryTerms,
    member_price_of,
    needs_membership,
    price,
)
from tuanbox.membership.services import is_member

if TYPE_CHECKING:
    from tuanbox.orders.models import Order

log = logging.getLogger("tuanbox.flashsale")


class SoldOutError(ConflictError):
    code = "SOLD_OUT"


class FlashLimitError(ConflictError):
    code = "USER_LIMIT_EXCEEDED"


class SaleNotActiveError(ConflictError):
    code = "SALE_NOT_ACTIVE"


class ReservationInFlightError(ConflictError):
    code = "RESERVATION_IN_FLIGHT"


class InvalidSaleError(InvalidInputError):
    code = "INVALID_FLASH_SALE"


@dataclass(frozen=True)
class SaleSpec:
    """`CreateFlashSale`."""

    sku_id: str
    title: str
    price_cents: int
    stock_cap: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime


def create_sale(session: Session, *, merchant_id: str, actor_id: str, spec: SaleSpec) -> FlashSale:
    from tuanbox.catalog.models import Product, Sku
    from tuanbox.catalog.stock import reserve_stock

    if spec.stock_cap < 1 or spec.per_user_limit < 1 or spec.price_cents < 0:
        raise InvalidSaleError("stock_cap and per_user_limit must be >= 1, price >= 0")
    if spec.ends_at <= spec.starts_at:
        raise InvalidSaleError("the sale must end after it starts")
    sku = session.get(Sku, spec.sku_id)
    product = session.get(Product, sku.product_id) if sku is not None else None
    if sku is None or product is None or product.merchant_id != merchant_id:
        raise InvalidSaleError(f"SKU {spec.sku_id} is not one of merchant {merchant_id}'s")
    sale = FlashSale(
        merchant_id=merchant_id,
        sku_id=spec.sku_id,
        title=spec.title,
        price_cents=spec.price_cents,
        stock_cap=spec.stock_cap,
        remaining=spec.stock_cap,
        per_user_limit=spec.per_user_limit,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        created_by=actor_id,
    )
    # The whole cap is set aside on the SKU now, so nothing else can sell these units; each
    # winning order then takes its units over from the sale (see `write_reservation`).
    reserve_stock(session, spec.sku_id, spec.stock_cap)
    session.add(sale)
    session.flush()
    return sale


def get_sale(session: Session, sale_id: str) -> FlashSale:
    sale = session.get(FlashSale, sale_id)
    if sale is None:
        raise NotFoundError(f"flash sale {sale_id} not found")
    return sale


@dataclass(frozen=True)
class Reserved:
    """`ItemReserved` (or the same reservation again, for a repeated request id)."""

    reservation_id: str
    order_id: str
    qty: int
    remaining: int
    replayed: bool


@dataclass(frozen=True)
class SaleTerms:
    """What the hot path needs to know about a sale, without reading the DB each time."""

    id: str
    sku_id: str
    price_cents: int
    per_user_limit: int
    starts_at: datetime
    ends_at: datetime
    # The SKU's member price when below the sale's (`tuanbox.membership.pricing`): only then
    # does the writer read a winner's membership for the price.
    member_price_cents: int | None = None


class TermsCache:
    """Per-process cache of sale terms for a few seconds (terms never change after creation).

    Sold-out and over-limit answers then touch only Redis; only admitted buyers reach the DB.
    """

    def __init__(self, ttl_s: float = 5.0) -> None:
        self._ttl = ttl_s
        self._entries: dict[str, tuple[float, SaleTerms]] = {}

    def peek(self, sale_id: str) -> SaleTerms | None:
        """The cached terms, without touching the DB (the event loop's side)."""
        hit = self._entries.get(sale_id)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def get(self, session: Session, sale_id: str) -> SaleTerms:
        hit = self._entries.get(sale_id)
        clock = time.monotonic()
        if hit is not None and hit[0] > clock:
            return hit[1]
        sale = get_sale(session, sale_id)
        member_price = member_price_of(session, sale.sku_id)
        terms = SaleTerms(
            sale.id,
            sale.sku_id,
            sale.price_cents,
            sale.per_user_limit,
            as_utc(sale.starts_at),
            as_utc(sale.ends_at),
            member_price if member_price is not None and member_price < sale.price_cents else None,
        )
        if len(self._entries) > 1000:
            self._entries.clear()  # bounded: a handful of sales run at once
        self._entries[sale_id] = (clock + self._ttl, terms)
        return terms


def reserve(
    session: Session,
    counters: FlashCounters,
    *,
    sale_id: str,
    user_id: str,
    request_id: str,
    qty: int,
    now: datetime,
    terms_cache: TermsCache | None = None,
    pay_timeout_s: int | None = None,
    station_id: str | None = None,
    delivery: DeliveryTerms = NO_FEE,
) -> Reserved:
    """`ReserveItem`: commits its own transaction, because compensation straddles Redis.

    `request_id` is the client's key (the Idempotency-Key); it is scoped to the shopper, so
    two shoppers who happen to pick the same key never meet.
    """
    request_id = request_key(user_id, request_id)
    sale = (terms_cache or TermsCache(ttl_s=0)).get(session, sale_id)
    if not sale.starts_at <= now < sale.ends_at:
        raise SaleNotActiveError("this flash sale is not running now")
    if not 1 <= qty <= sale.per_user_limit:
        raise FlashLimitError(f"between 1 and {sale.per_user_limit} units per shopper")
    result = counters.reserve(
        sale.id, user_id=user_id, request_id=request_id, qty=qty, per_user_limit=sale.per_user_limit
    )
    if result.status is ReserveStatus.NOT_LOADED:
        load_counters(session, counters, get_sale(session, sale.id), only_if_missing=True)
        result = counters.reserve(
            sale.id,
            user_id=user_id,
            request_id=request_id,
            qty=qty,
            per_user_limit=sale.per_user_limit,
        )
    if result.status is ReserveStatus.DUPLICATE:
        return _replay(session, get_sale(session, sale.id), user_id, request_id)
    if result.status is ReserveStatus.SOLD_OUT:
        raise SoldOutError("sold out")
    if result.status is ReserveStatus.USER_LIMIT:
        raise FlashLimitError(f"at most {sale.per_user_limit} units per shopper in this sale")
    if result.status is not ReserveStatus.RESERVED:
        raise SoldOutError(f"counters not ready ({result.status.name})")
    return record_admitted(
        session,
        counters,
        sale,
        user_id=user_id,
        request_id=request_id,
        qty=qty,
        pay_timeout_s=pay_timeout_s,
        station_id=station_id,
        delivery=delivery,
    )


def record_admitted(
    session: Session,
    counters: FlashCounters,
    sale: SaleTerms,
    *,
    user_id: str,
    request_id: str,
    qty: int,
    pay_timeout_s: int | None,
    station_id: str | None = None,
    delivery: DeliveryTerms = NO_FEE,
) -> Reserved:
    """Write an admitted buyer's reservation and order and commit; if that fails, give the
    Redis reservation back (compensation) and re-raise. `request_id` is already scoped."""
    try:
        reserved = write_reservation(
            session,
            sale,
            user_id=user_id,
            request_id=request_id,
            qty=qty,
            pay_timeout_s=pay_timeout_s,
            station_id=station_id,
            delivery=delivery,
        )
        session.commit()
    except (SQLAlchemyError, TuanboxError) as exc:
        session.rollback()
        counters.release(sale.id, request_id)
        if isinstance(exc, IntegrityError):
            # The key was used before and that reservation was since released (its order
            # lapsed, reconciliation freed the key in Redis): answer the first result again.
            earlier = session.scalar(
                select(Reservation.id).where(
                    Reservation.sale_id == sale.id, Reservation.request_id == request_id
                )
            )
            if earlier is not None:
                return _replay(session, get_sale(session, sale.id), user_id, request_id)
        raise
    return reserved


def request_key(user_id: str, key: str) -> str:
    """The stored request id: the client's key scoped to its shopper, fixed length."""
    return hashlib.sha256(f"{user_id}\x00{key}".encode()).hexdigest()


def write_reservation(
    session: Session,
    sale: SaleTerms,
    *,
    user_id: str,
    request_id: str,
    qty: int,
    pay_timeout_s: int | None,
    station_id: str | None = None,
    reservation_id: str | None = None,
    order_id: str | None = None,
    delivery: DeliveryTerms = NO_FEE,
    member: bool | None = None,
    admitted_at: datetime | None = None,
) -> Reserved:
    """Record one winner: per-shopper total, order, reservation, the sale's remaining.

    The order's price follows `tuanbox.membership.pricing`: a member at `admitted_at` (Redis's
    clock at admission; now on the request path) pays min(sale price, member price) and no
    delivery fee. `member` is the caller's answer from the record when it read memberships
    for a whole batch; None reads it here, and only when it could change the price or fee.
    """
    from tuanbox.orders.services import DEFAULT_PAY_TIMEOUT_S, create_order

    # The DB's own per-user guard, in one round trip: insert, or add where still within.
    ins = insert_for(session)(UserTotal).values(sale_id=sale.id, user_id=user_id, qty=qty)
    within = session.execute(
        ins.on_conflict_do_update(
            index_elements=[UserTotal.sale_id, UserTotal.user_id],
            set_={"qty": UserTotal.qty + ins.excluded.qty},
            where=UserTotal.qty + ins.excluded.qty <= sale.per_user_limit,
        ).returning(UserTotal.qty),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if within is None:
        raise FlashLimitError(f"at most {sale.per_user_limit} units per shopper in this sale")
    if member is None:
        member = needs_membership(
            sale.price_cents, qty, sale.member_price_cents, delivery
        ) and is_member(session, user_id, admitted_at)
    priced = price(sale.price_cents, qty, sale.member_price_cents, delivery, member=member)
    order = create_order(
        session,
        user_id=user_id,
        sku_id=sale.sku_id,
        qty=qty,
        unit_price_cents=priced.unit_price_cents,
        delivery_fee_cents=priced.delivery_fee_cents,
        kind="flash",
        station_id=station_id,
        # Unpaid, the order expires and its unit goes back to the sale (hook + reconcile).
        pay_timeout_s=pay_timeout_s or DEFAULT_PAY_TIMEOUT_S,
        # The units are already reserved on the SKU for the sale: the order takes them over
        # (stock_held), so the winner never waits on the SKU row, only on the sale row.
        reserve=False,
        order_id=order_id,
    )
    order.stock_held = True
    reservation = Reservation(
        **({"id": reservation_id} if reservation_id is not None else {}),
        sale_id=sale.id,
        user_id=user_id,
        request_id=request_id,
        qty=qty,
        order_id=order.id,
    )
    session.add(reservation)
    session.flush()
    # The record's guard, last: the sale row (the hottest lock) is held only until commit.
    row = session.execute(
        update(FlashSale)
        .where(
            FlashSale.id == sale.id,
            FlashSale.remaining >= qty,
            FlashSale.closed_at.is_(None),
        )
        .values(remaining=FlashSale.remaining - qty)
        .returning(FlashSale.remaining),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if row is None:
        raise SoldOutError("sold out")
    return Reserved(reservation.id, order.id, qty, int(row[0]), replayed=False)


def replay(session: Session, sale_id: str, user_id: str, request_id: str) -> Reserved:
    """The first answer to an already used (scoped) request id, from the record."""
    return _replay(session, get_sale(session, sale_id), user_id, request_id)


def _replay(session: Session, sale: FlashSale, user_id: str, request_id: str) -> Reserved:
    found = session.scalar(
        select(Reservation).where(
            Reservation.sale_id == sale.id, Reservation.request_id == request_id
        )
    )
    if found is None or found.user_id != user_id or found.order_id is None:
        # Redis has the request id but the DB does not (yet): the first attempt is in flight.
        raise ReservationInFlightError("this request is already being processed; retry shortly")
    return Reserved(found.id, found.order_id, found.qty, sale.remaining, replayed=True)


def db_view(session: Session, sale: FlashSale) -> tuple[int, dict[str, int], dict[str, Held]]:
    active = list(
        session.scalars(
            select(Reservation).where(
                Reservation.sale_id == sale.id, Reservation.status == "active"
            )
        )
    )
    users = {
        u: int(q)
        for u, q in session.execute(
            select(UserTotal.user_id, UserTotal.qty).where(
                UserTotal.sale_id == sale.id, UserTotal.qty > 0
            )
        )
    }
    held = {
        r.request_id: Held(
            r.user_id, r.qty, int(as_utc(r.created_at).timestamp()), r.id, r.order_id
        )
        for r in active
    }
    return sale.remaining, users, held


def load_counters(
    session: Session, counters: FlashCounters, sale: FlashSale, *, only_if_missing: bool = False
) -> bool:
    """Put the DB's view of a sale into Redis (first use, or after Redis lost it)."""
    session.refresh(sale)
    remaining, users, held = db_view(session, sale)
    return counters.load(
        sale.id, remaining=remaining, users=users, requests=held, only_if_missing=only_if_missing
    )


def on_order_lapsed(session: Session, order: Order, from_status: str) -> None:
    """Orders hook: a flash order was cancelled or expired; its units return to the sale.

    Only the DB changes here; the next reconciliation gives the units back in Redis.
    """
    from tuanbox.catalog.models import Sku
    from tuanbox.catalog.stock import reserve_stock

    if order.kind != "flash":
        return
    reservation = session.scalar(
        select(Reservation).where(Reservation.order_id == order.id, Reservation.status == "active")
    )
    if reservation is None:
        return
    reservation.status = "released"
    session.execute(
        update(UserTotal)
        .where(UserTotal.sale_id == reservation.sale_id, UserTotal.user_id == reservation.user_id)
        .values(qty=UserTotal.qty - reservation.qty),
        execution_options={"synchronize_session": False},
    )
    sku = session.get(Sku, order.sku_id)
    if sku is not None and sku.active:
        back = session.execute(
            update(FlashSale)
            .where(FlashSale.id == reservation.sale_id, FlashSale.closed_at.is_(None))
            .values(remaining=FlashSale.remaining + reservation.qty)
            .returning(FlashSale.id),
            execution_options={"synchronize_session": False},
        ).one_or_none()
        if back is not None:
            # Orders just released these units on the SKU; a running sale takes them back into
            # its pool (net zero on the SKU). After close, or for a withdrawn SKU, they stay.
            reserve_stock(session, order.sku_id, reservation.qty)
    session.flush()


def sold_count(session: Session, sale_id: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(Reservation.qty), 0)).where(
                Reservation.sale_id == sale_id, Reservation.status == "active"
            )
        )
        or 0
    )
