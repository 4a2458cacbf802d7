"""Helpers for the coupon tests: templates, paying an order through SimPay, pickup, refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor
from tuanbox.coupons.models import CouponTemplate
from tuanbox.coupons.services import create_template
from tuanbox.db.base import utcnow
from tuanbox.orders.models import Order
from tuanbox.orders.services import transition
from tuanbox.payments.models import Refund
from tuanbox.payments.services import handle_event, process_refund, refund, start_checkout
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

SYSTEM = Actor("system", "system")


def template(session: Session, **fields: Any) -> CouponTemplate:
    values: dict[str, Any] = {
        "name": "¥5 off",
        "kind": "amount_off",
        "amount_off_cents": 500,
        "valid_from": utcnow() - timedelta(days=1),
        "valid_until": utcnow() + timedelta(days=30),
        "per_user_limit": 5,
        "stackable": True,
    }
    values.update(fields)
    return create_template(session, created_by="ops-1", **values)


def pay(session: Session, settings: Settings, order: Order) -> Order:
    sim = SimPay(settings)
    intent = start_checkout(session, order, sim)
    assert intent.amount_cents == order.total_cents - order.discount_cents
    body, headers = sim.payment_webhook(sim.charge(session, intent.id, intent.amount_cents))
    assert handle_event(session, sim.verify_webhook(headers, body)) == "applied"
    session.refresh(order)
    return order


def pick_up(session: Session, order: Order) -> Order:
    for status in ("confirmed", "allocated", "ready_for_pickup", "picked_up"):
        session.refresh(order)
        if order.status == "paid" or status != "confirmed":
            transition(session, order, status, actor=SYSTEM, reason="test")
    session.refresh(order)
    assert order.status == "picked_up"
    return order


def pay_out(session: Session, settings: Settings, row: Refund) -> Refund:
    assert process_refund(session, row.id, SimPay(settings)) == "succeeded"
    session.refresh(row)
    return row


def refund_now(session: Session, settings: Settings, order: Order, cents: int, key: str) -> Refund:
    return pay_out(session, settings, refund(session, order, cents, "test", key))
