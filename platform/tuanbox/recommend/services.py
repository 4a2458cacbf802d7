"""Keep the co-occurrence counts in step with picked-up orders (incrementally, once per
order, taken back on a return), rebuild them from the orders, and read them for scoring.

Counted: orders that reached picked_up and were not returned (picked_up, completed,
return_requested). A return (``returned``, then ``refunded``) takes the order back: a shopper
who sent the goods back did not like them. A partial refund changes no status and is not
taken back (the goods were kept).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tuanbox.catalog.models import Sku
from tuanbox.db.base import utcnow
from tuanbox.orders.domain import OrderStatus
from tuanbox.orders.models import Order
from tuanbox.recommend.domain import all_pairs, new_pairs
from tuanbox.recommend.models import RecItem, RecOrder, RecPair, RecStationDay, RecUserItem

KEPT = (OrderStatus.PICKED_UP, OrderStatus.COMPLETED, OrderStatus.RETURN_REQUESTED)


def _insert(session: Session, table: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _lock_shopper(session: Session, user_id: str) -> None:
    """Serialise one shopper's updates: two of their orders picked up at once must each see
    the other's item, or a pair is lost. SQLite writes one at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('rec:' || :u))"), {"u": user_id}
        )


def _add(
    session: Session, table: Any, keys: Sequence[str], col: str, rows: list[dict[str, Any]]
) -> None:
    """Add each row's ``col`` to the stored count (created at the row's value), in key order
    so concurrent updates lock rows in the same order and cannot deadlock."""
    if not rows:
        return
    rows = sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))
    stmt = _insert(session, table).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(keys), set_={col: getattr(table.c, col) + getattr(stmt.excluded, col)}
    )
    session.execute(stmt)


def record(
    session: Session,
    *,
    order_id: str,
    user_id: str,
    product_id: str,
    station_id: str | None,
    at: datetime,
) -> bool:
    """Count one picked-up order; False when it was counted before (a replayed hook)."""
    marker = (
        _insert(session, RecOrder.__table__)
        .values(
            order_id=order_id,
            user_id=user_id,
            product_id=product_id,
            station_id=station_id,
            day=at.date(),
            counted_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(RecOrder.__table__.c.order_id)
    )
    if session.execute(marker).first() is None:
        return False
    _lock_shopper(session, user_id)
    if station_id is not None:
        _add(
            session,
            RecStationDay.__table__,
            ("station_id", "day", "product_id"),
            "orders",
            [{"station_id": station_id, "day": at.date(), "product_id": product_id, "orders": 1}],
        )
    owned = session.scalar(
        select(RecUserItem.orders).where(
            RecUserItem.user_id == user_id, RecUserItem.product_id == product_id
        )
    )
    _add(
        session,
        RecUserItem.__table__,
        ("user_id", "product_id"),
        "orders",
        [{"user_id": user_id, "product_id": product_id, "orders": 1}],
    )
    if owned:  # not their first of this product: no new buyer, no new pair
        return True
    others = _owned(session, user_id, exclude=product_id)
    _add(
        session,
        RecItem.__table__,
        ("product_id",),
        "buyers",
        [{"product_id": product_id, "buyers": 1}],
    )
    _add(
        session,
        RecPair.__table__,
        ("product_a", "product_b"),
        "shoppers",
        [{"product_a": a, "product_b": b, "shoppers": 1} for a, b in new_pairs(others, product_id)],
    )
    return True


def _owned(session: Session, user_id: str, *, exclude: str) -> list[str]:
    return list(
        session.scalars(
            select(RecUserItem.product_id).where(
                RecUserItem.user_id == user_id, RecUserItem.product_id != exclude
            )
        )
    )


def take_back(session: Session, order_id: str) -> bool:
    """Undo what ``record`` added for this order, once; False if it was never counted or
    has been taken back already."""
    row = session.execute(
        select(RecOrder)
        .where(RecOrder.order_id == order_id, RecOrder.reversed_at.is_(None))
        .with_for_update()
    ).scalar_one_or_none()
    if row is None:
        return False
    row.reversed_at = utcnow()
    _lock_shopper(session, row.user_id)
    if row.station_id is not None:
        session.execute(
            update(RecStationDay)
            .where(
                RecStationDay.station_id == row.station_id,
                RecStationDay.day == row.day,
                RecStationDay.product_id == row.product_id,
            )
            .values(orders=RecStationDay.orders - 1)
        )
    left = session.execute(
        update(RecUserItem)
        .where(
            RecUserItem.user_id == row.user_id,
            RecUserItem.product_id == row.product_id,
            RecUserItem.orders > 1,
        )
        .values(orders=RecUserItem.orders - 1)
    ).rowcount  # type: ignore[attr-defined]
    if left:  # they still keep another order of it
        session.flush()
        return True
    session.execute(
        delete(RecUserItem).where(
            RecUserItem.user_id == row.user_id, RecUserItem.product_id == row.product_id
        )
    )
    others = sorted(_owned(session, row.user_id, exclude=row.product_id))
    session.execute(
        update(RecItem)
        .where(RecItem.product_id == row.product_id)
        .values(buyers=RecItem.buyers - 1)
    )
    for a, b in sorted(new_pairs(others, row.product_id)):
        session.execute(
            update(RecPair)
            .where(RecPair.product_a == a, RecPair.product_b == b)
            .values(shoppers=RecPair.shoppers - 1)
        )
    session.flush()
    return True


def product_of(session: Session, sku_id: str) -> str:
    return str(session.scalar(select(Sku.product_id).where(Sku.id == sku_id)))


def kept_orders(session: Session) -> Iterable[tuple[str, str, str, str | None, datetime]]:
    """(order, shopper, product, station, picked-up time) of every counted order, from the
    orders themselves: what a rebuild counts (the time the hook used: ``picked_up_at``)."""
    from tuanbox.orders.models import OrderTransition

    picked = (
        select(OrderTransition.order_id, func.min(OrderTransition.at).label("at"))
        .where(OrderTransition.to_status == OrderStatus.PICKED_UP)
        .group_by(OrderTransition.order_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Order.id,
            Order.user_id,
            Sku.product_id,
            Order.station_id,
            func.coalesce(Order.picked_up_at, picked.c.at),
        )
        .join(Sku, Sku.id == Order.sku_id)
        .join(picked, picked.c.order_id == Order.id)
        .where(Order.status.in_([s.value for s in KEPT]))
    )
    return [(o, u, p, s, at) for o, u, p, s, at in rows]


def rebuild(session: Session) -> int:
    """Recount everything from the orders (after a restore, or to check the increments):
    returns the number of orders counted."""
    return rebuild_from(session, kept_orders(session))


def rebuild_from(
    session: Session, kept: Iterable[tuple[str, str, str, str | None, datetime]]
) -> int:
    """Replace every count with a full count of these kept orders (see ``kept_orders``)."""
    for table in (RecPair, RecItem, RecUserItem, RecStationDay, RecOrder):
        session.execute(delete(table))
    orders = list(kept)
    histories: dict[str, dict[str, int]] = {}
    days: dict[tuple[str, date, str], int] = {}
    markers = []
    for order_id, user_id, product_id, station_id, at in orders:
        owned = histories.setdefault(user_id, {})
        owned[product_id] = owned.get(product_id, 0) + 1
        if station_id is not None:
            key = (station_id, at.date(), product_id)
            days[key] = days.get(key, 0) + 1
        markers.append(
            {
                "order_id": order_id,
                "user_id": user_id,
                "product_id": product_id,
                "station_id": station_id,
                "day": at.date(),
                "counted_at": utcnow(),
            }
        )
    buyers: dict[str, int] = {}
    for owned in histories.values():
        for p in owned:
            buyers[p] = buyers.get(p, 0) + 1
    pairs = all_pairs(histories)
    for table, rows in (
        (RecOrder, markers),
        (
            RecUserItem,
            [
                {"user_id": u, "product_id": p, "orders": n}
                for u, owned in histories.items()
                for p, n in owned.items()
            ],
        ),
        (RecItem, [{"product_id": p, "buyers": n} for p, n in buyers.items()]),
        (RecPair, [{"product_a": a, "product_b": b, "shoppers": n} for (a, b), n in pairs.items()]),
        (
            RecStationDay,
            [
                {"station_id": s, "day": d, "product_id": p, "orders": n}
                for (s, d, p), n in days.items()
            ],
        ),
    ):
        for start in range(0, len(rows), 5000):
            session.execute(_insert(session, table.__table__), rows[start : start + 5000])
    session.flush()
    return len(orders)


# Reads (any session: the replica may answer; a few seconds old is fine).


def neighbours(session: Session, products: Iterable[str]) -> dict[str, dict[str, int]]:
    """Stored pairs of these products (both ways are stored, so one range each)."""
    wanted = sorted(set(products))
    out: dict[str, dict[str, int]] = {}
    if not wanted:
        return out
    rows = session.execute(
        select(RecPair.product_a, RecPair.product_b, RecPair.shoppers).where(
            RecPair.product_a.in_(wanted), RecPair.shoppers > 0
        )
    )
    for a, b, n in rows:
        out.setdefault(a, {})[b] = int(n)
    return out


def buyers_of(session: Session, products: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(products))
    if not wanted:
        return {}
    rows = session.execute(
        select(RecItem.product_id, RecItem.buyers).where(RecItem.product_id.in_(wanted))
    )
    return {p: int(n) for p, n in rows}


def history(session: Session, user_id: str, limit: int = 200) -> list[str]:
    return list(
        session.scalars(
            select(RecUserItem.product_id)
            .where(RecUserItem.user_id == user_id)
            .order_by(RecUserItem.orders.desc())
            .limit(limit)
        )
    )


def station_popularity(
    session: Session, station_id: str | None, now: datetime, days: int
) -> dict[str, float]:
    """Kept orders per product over the last ``days`` days at this station (all stations
    when None)."""
    since = (now - timedelta(days=days)).date()
    query = select(RecStationDay.product_id, func.sum(RecStationDay.orders)).where(
        RecStationDay.day >= since
    )
    if station_id is not None:
        query = query.where(RecStationDay.station_id == station_id)
    rows = session.execute(query.group_by(RecStationDay.product_id))
    return {p: float(n) for p, n in rows if n and n > 0}


def prune_days(session: Session, now: datetime, keep_days: int) -> int:
    """Delete station-day counts older than the popularity window (they are never read);
    a take-back of such an old order then finds no row to decrement, which is harmless."""
    before = (now - timedelta(days=keep_days + 1)).date()
    result = session.execute(delete(RecStationDay).where(RecStationDay.day < before))
    return int(result.rowcount)  # type: ignore[attr-defined]
