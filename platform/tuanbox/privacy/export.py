"""A shopper's copy of their data: account, addresses, orders, returns, refunds, notices, and
their coupons, points, referrals, membership, tags, pushes and experiment arms."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import column, inspect, select, table
from sqlalchemy.orm import Session

from tuanbox.accounts.models import Address, User
from tuanbox.accounts.services import display_name_of, phone_of, read_address
from tuanbox.catalog.models import Merchant, Product, Sku
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError
from tuanbox.notifications.models import Notification
from tuanbox.orders.models import Order, OrderTransition
from tuanbox.payments.models import Refund
from tuanbox.privacy.growth import export_sections
from tuanbox.returns.models import ReturnRequest
from tuanbox.settings import Settings

FORMAT = "tuanbox.export/1"


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _orders(session: Session, user_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Order, Sku.name, Product.name, Merchant.name)
        .join(Sku, Sku.id == Order.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .join(Merchant, Merchant.id == Order.merchant_id)
        .where(Order.user_id == user_id)
        .order_by(Order.created_at, Order.id)
    ).all()
    ids = [order.id for order, *_ in rows]
    moves: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for t in session.scalars(
        select(OrderTransition)
        .where(OrderTransition.order_id.in_(ids))
        .order_by(OrderTransition.id)
    ):
        # Who moved it is staff's business; the shopper sees what happened and when.
        moves[t.order_id].append({"from": t.from_status, "to": t.to_status, "at": _at(t.at)})
    refunds: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for r in session.scalars(select(Refund).where(Refund.order_id.in_(ids)).order_by(Refund.id)):
        refunds[r.order_id].append(
            {"id": r.id, "amount_cents": r.amount_cents, "status": r.status,
             "created_at": _at(r.created_at), "succeeded_at": _at(r.succeeded_at)}
        )  # fmt: skip
    return [
        {
            "id": order.id,
            "kind": order.kind,
            "status": order.status,
            "merchant": merchant,
            "product": product,
            "sku": sku,
            "qty": order.qty,
            "unit_price_cents": order.unit_price_cents,
            "total_cents": order.total_cents,
            "paid_cents": order.paid_cents,
            "refunded_cents": order.refunded_cents,
            "station_id": order.station_id,
            "created_at": _at(order.created_at),
            "paid_at": _at(order.paid_at),
            "picked_up_at": _at(order.picked_up_at),
            "history": moves[order.id],
            "refunds": refunds[order.id],
        }
        for order, sku, product, merchant in rows
    ]


def _reviews(session: Session, user_id: str) -> list[dict[str, Any]]:
    """The account's reviews, where this database has the reviews feature's table."""
    if "reviews" not in inspect(session.connection()).get_table_names():
        return []
    names = ("id", "order_id", "product_id", "rating", "text", "merchant_reply", "created_at")
    reviews = table("reviews", *(column(n) for n in (*names, "user_id")))
    rows = session.execute(
        select(*(reviews.c[n] for n in names))
        .where(reviews.c.user_id == user_id)
        .order_by(reviews.c.created_at, reviews.c.id)
    ).all()
    out = [row._asdict() for row in rows]
    for review in out:  # a column without a type: PostgreSQL gives datetimes, SQLite text
        if isinstance(review["created_at"], datetime):
            review["created_at"] = _at(review["created_at"])
    return out


def export(session: Session, settings: Settings, user_id: str) -> dict[str, Any]:
    """Everything personal we hold about this account, decrypted, as one JSON document."""
    user = session.get(User, user_id)
    if user is None or user.erased_at is not None:
        raise NotFoundError("no such account")
    addresses = session.scalars(
        select(Address).where(Address.user_id == user.id).order_by(Address.created_at)
    ).all()
    returns = session.scalars(
        select(ReturnRequest).where(ReturnRequest.user_id == user.id).order_by(ReturnRequest.id)
    ).all()
    notices = session.scalars(
        select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
    ).all()
    return {
        "format": FORMAT,
        "generated_at": utcnow().isoformat(),
        "account": {
            "id": user.id,
            "role": user.role,
            "phone": phone_of(settings, user),
            "display_name": display_name_of(settings, user),
            "created_at": _at(user.created_at),
        },
        "addresses": [
            {
                "id": a.id,
                "label": a.label,
                "text": read_address(settings, a),
                "created_at": _at(a.created_at),
            }
            for a in addresses
        ],
        "orders": _orders(session, user.id),
        "returns": [
            {
                "id": r.id,
                "order_id": r.order_id,
                "method": r.method,
                "status": r.status,
                "reason": r.reason,
                "courier_tracking": r.courier_tracking,
                "created_at": _at(r.created_at),
                "received_at": _at(r.received_at),
            }
            for r in returns
        ],
        "notifications": [
            {
                "id": n.id,
                "channel": n.channel,
                "template": n.template,
                "payload": n.payload,
                "created_at": _at(n.created_at),
            }
            for n in notices
        ],
        "reviews": _reviews(session, user.id),
        **export_sections(session, settings, user.id),
    }
