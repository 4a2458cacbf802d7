"""Stock reservations: guarded single-statement updates, so stock can never go negative."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from tuanbox.bounds import MAX_STOCK
from tuanbox.catalog.errors import (
    InsufficientStockError,
    SkuNotFoundError,
    StockInvariantError,
    StockLimitError,
)
from tuanbox.catalog.models import Sku


def reserve_stock(session: Session, sku_id: str, qty: int) -> None:
    """Reserve `qty` units or raise InsufficientStockError; nothing changes on failure.

    The check and the increment are one UPDATE, so two buyers can never both pass the check
    on the same last unit (the row lock serialises them; the second re-evaluates the WHERE).
    """
    if qty <= 0:
        raise ValueError("qty must be positive")
    result = session.execute(
        update(Sku)
        .where(
            Sku.id == sku_id,
            Sku.active.is_(True),
            Sku.stock_on_hand - Sku.stock_reserved >= qty,
        )
        .values(stock_reserved=Sku.stock_reserved + qty)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        if session.get(Sku, sku_id) is None:
            raise SkuNotFoundError(f"SKU {sku_id} does not exist")
        raise InsufficientStockError("not enough stock for this SKU", sku_id=sku_id, qty=qty)
    _expire(session, sku_id)


def reserve_many(session: Session, quantities: Mapping[str, int]) -> None:
    """Reserve several SKUs all-or-nothing, locking rows in key order to avoid deadlocks."""
    ordered = sorted(quantities)
    session.execute(select(Sku.id).where(Sku.id.in_(ordered)).order_by(Sku.id).with_for_update())
    for sku_id in ordered:
        reserve_stock(session, sku_id, quantities[sku_id])


def release_stock(session: Session, sku_id: str, qty: int) -> None:
    """Give back a reservation (order cancelled or expired)."""
    _guarded(
        session,
        sku_id,
        qty,
        Sku.stock_reserved >= qty,
        {"stock_reserved": Sku.stock_reserved - qty},
    )


def commit_stock(session: Session, sku_id: str, qty: int) -> None:
    """The goods left the building (picked up or shipped): decrement reserved and on hand."""
    _guarded(
        session,
        sku_id,
        qty,
        Sku.stock_reserved >= qty,
        {"stock_reserved": Sku.stock_reserved - qty, "stock_on_hand": Sku.stock_on_hand - qty},
    )


def restock(session: Session, sku_id: str, qty: int) -> None:
    """Add units on hand (deliveries in, returned goods back on sale), up to MAX_STOCK."""
    try:
        _guarded(
            session,
            sku_id,
            qty,
            Sku.stock_on_hand <= MAX_STOCK - qty,
            {"stock_on_hand": Sku.stock_on_hand + qty},
        )
    except StockInvariantError:
        if session.get(Sku, sku_id) is None:
            raise
        raise StockLimitError(
            f"SKU {sku_id} would hold more than {MAX_STOCK} units", sku_id=sku_id
        ) from None


def _guarded(
    session: Session, sku_id: str, qty: int, guard: ColumnElement[bool], values: dict[str, Any]
) -> None:
    if qty <= 0:
        raise ValueError("qty must be positive")
    result = session.execute(
        update(Sku)
        .where(Sku.id == sku_id, guard)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise StockInvariantError(f"stock of SKU {sku_id} cannot move by {qty}", sku_id=sku_id)
    _expire(session, sku_id)


def _expire(session: Session, sku_id: str) -> None:
    # The UPDATE bypassed the identity map; expire any loaded copy so readers see new counts.
    obj = session.identity_map.get(session.identity_key(Sku, sku_id))
    if obj is not None:
        session.expire(obj, ["stock_on_hand", "stock_reserved"])
