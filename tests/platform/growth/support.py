"""Helpers for the growth tests: an invitee bound to an inviter whose first order is picked up."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.platform.coupons.support import pay, pick_up
from tests.platform.factories import make_order, make_sku, make_user
from tuanbox.accounts.models import User
from tuanbox.catalog.models import Sku
from tuanbox.growth.binding import bind
from tuanbox.orders.models import Order
from tuanbox.settings import Settings


def invitee_with_order(
    session: Session,
    settings: Settings,
    inviter: User,
    sku: Sku,
    *,
    picked_up: bool = True,
) -> tuple[User, Order]:
    invitee = make_user(session)
    bind(session, invitee_id=invitee.id, inviter_id=inviter.id, source="poster")
    order = pay(session, settings, make_order(session, user=invitee, sku=sku))
    if picked_up:
        pick_up(session, order)
    return invitee, order


def new_sku(session: Session) -> Sku:
    return make_sku(session, price_cents=2000, stock=10_000)
