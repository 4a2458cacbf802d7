"""What the shop pages say about member prices and the delivery fee: the order's own fee and
price as charged, and to a shopper who is not a member, what a member would pay (upsell).
The rule itself is `tuanbox.membership.pricing`'s; these pages only show it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from tuanbox.membership.pricing import DeliveryTerms, member_price_of
from tuanbox.membership.services import is_member
from tuanbox.orders.models import Order
from tuanbox.settings import Settings


@dataclass(frozen=True)
class Perks:
    member: bool
    member_price_cents: int | None  # the SKU's member price, when below what this order charges
    member_priced: bool  # this order's unit price is the member price
    fee_cents: int  # the platform's fee now
    free_over_cents: int
    upsell: bool  # not a member, and a member would pay less on this order


def for_order(session: Session, settings: Settings, order: Order, user_id: str) -> Perks:
    terms = DeliveryTerms.of(settings)
    member = is_member(session, user_id)
    price = member_price_of(session, order.sku_id)
    member_priced = member and price is not None and price == order.unit_price_cents
    cheaper = price if price is not None and price < order.unit_price_cents else None
    upsell = not member and (cheaper is not None or order.delivery_fee_cents > 0)
    return Perks(member, cheaper, member_priced, terms.fee_cents, terms.free_over_cents, upsell)
