"""Keeping Redis honest (DB wins) and closing ended sales: the flash-sale beat job's work."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tuanbox.flashsale.counters import FlashCounters
from tuanbox.flashsale.models import FlashSale
from tuanbox.flashsale.services import db_view, load_counters

log = logging.getLogger("tuanbox.flashsale")


@dataclass(frozen=True)
class Drift:
    sale_id: str
    released_orphans: int
    reloaded: bool


def reconcile_sale(
    session: Session, counters: FlashCounters, sale: FlashSale, *, redis_now: int, grace_s: int
) -> Drift:
    """Repair Redis from the DB (DB wins), leaving requests still in flight alone.

    A request id in Redis with no active DB reservation is either in flight (the DB step
    has not committed yet, or its order waits on the sale's stream), released in the DB
    (order cancelled or expired), or orphaned (the process died between Lua and
    compensation). The last two give their units back; in-flight ones younger than `grace_s`
    are left to finish, and queued ones are always left to the stream's consumer.
    """
    stock, _, in_redis = counters.snapshot(sale.id)
    if stock is None:
        load_counters(session, counters, sale, only_if_missing=True)
        return Drift(sale.id, 0, reloaded=True)
    # Read before the DB: the consumer commits an order, then drops its entry, so a request
    # read out of the stream here is in the DB by the time the DB is read.
    queued = counters.queued(sale.id)
    remaining, users, in_db = db_view(session, sale)
    released = 0
    for request_id, held in in_redis.items():
        orphan = request_id not in in_db and request_id not in queued
        if orphan and redis_now - held.at >= grace_s:
            released += 1 if counters.release(sale.id, request_id) else 0
    stock, redis_users, in_redis = counters.snapshot(sale.id)
    in_flight = {k: h for k, h in in_redis.items() if k not in in_db}
    expected_stock = remaining - sum(h.qty for h in in_flight.values())
    expected_users = dict(users)
    for h in in_flight.values():
        expected_users[h.user_id] = expected_users.get(h.user_id, 0) + h.qty
    if (
        stock == expected_stock
        and redis_users == expected_users
        and in_db.keys() <= in_redis.keys()
    ):
        return Drift(sale.id, released, reloaded=False)
    log.warning(
        "flash-sale drift repaired", extra={"sale": sale.id, "redis": stock, "db": remaining}
    )
    counters.load(
        sale.id, remaining=expected_stock, users=expected_users, requests={**in_db, **in_flight}
    )
    return Drift(sale.id, released, reloaded=True)


def reconcile_all(
    session: Session, counters: FlashCounters, *, now: datetime, redis_now: int, grace_s: int
) -> list[Drift]:
    sales = session.scalars(select(FlashSale).where(FlashSale.ends_at > now)).all()
    return [
        reconcile_sale(session, counters, s, redis_now=redis_now, grace_s=grace_s) for s in sales
    ]


def close_ended_sales(
    session: Session, *, now: datetime, busy: Callable[[str], bool] | None = None
) -> list[str]:
    """Close sales past their end: unsold units go back to the SKU (the caller then drops
    their Redis keys, after commit). A sale for which `busy` is true (winners' orders still
    wait on its stream) stays open until a later run.

    The sale row is locked (SKIP LOCKED, so concurrent jobs split the work) and the
    reservation guard refuses a closed sale, so a buyer racing the close either commits
    before it or is turned away and compensated.
    """
    from tuanbox.catalog.stock import release_stock

    sales = session.scalars(
        select(FlashSale)
        .where(FlashSale.ends_at <= now, FlashSale.closed_at.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    sales = [sale for sale in sales if busy is None or not busy(sale.id)]
    for sale in sales:
        if sale.remaining > 0:
            release_stock(session, sale.sku_id, sale.remaining)
        session.execute(
            update(FlashSale).where(FlashSale.id == sale.id).values(closed_at=now),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    return [sale.id for sale in sales]
