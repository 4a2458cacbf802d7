"""Helpers for the recommendation tests: what the tables hold, and orders at a status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.orders.models import Order, OrderTransition
from tuanbox.recommend.models import RecItem, RecPair, RecStationDay, RecUserItem


def snapshot(session: Session) -> dict[str, Any]:
    """The counts, zero rows left out (an incremental take-back leaves zeros a rebuild has
    no row for)."""
    session.flush()
    return {
        "pairs": {
            (a, b): n
            for a, b, n in session.execute(
                select(RecPair.product_a, RecPair.product_b, RecPair.shoppers)
            )
            if n
        },
        "items": {
            p: n for p, n in session.execute(select(RecItem.product_id, RecItem.buyers)) if n
        },
        "owned": {
            (u, p): n
            for u, p, n in session.execute(
                select(RecUserItem.user_id, RecUserItem.product_id, RecUserItem.orders)
            )
        },
        "days": {
            (s, d, p): n
            for s, d, p, n in session.execute(
                select(
                    RecStationDay.station_id,
                    RecStationDay.day,
                    RecStationDay.product_id,
                    RecStationDay.orders,
                )
            )
            if n
        },
    }


def set_status(session: Session, order: Order, status: str, at: datetime) -> None:
    """Put an order at a status with its transition row, without running hooks."""
    session.add(
        OrderTransition(
            order_id=order.id,
            from_status=order.status,
            to_status=status,
            actor_id="test",
            actor_role="system",
            reason="test",
            at=at,
        )
    )
    order.status = status
    session.flush()
