"""What an order costs a shopper when it is created: member prices and the delivery fee.

The rule, the same for every order kind that goes to a locker (regular, group-buy and its
pre-sales, flash sale):

- **Unit price.** A member pays `min(offer, member price)`: the offer is whatever this kind
  of order charges (the SKU's list price, the group's tier price or the leader price, a
  price experiment's arm, the flash-sale price), so a group tier or flash price already
  below the member price wins. Anyone else pays the offer. A group that closes at a lower
  tier refunds the difference as before (`groupbuy.closing`), so a member ends up paying
  `min(final tier, member price)` per unit.
- **Delivery fee.** `TUANBOX_DELIVERY_FEE_CENTS` per order, none for a member, none when the
  goods (units at the price above, before coupons) reach `TUANBOX_FREE_DELIVERY_OVER_CENTS`
  (满¥X免配送费). It is stored on the order (`orders.delivery_fee_cents`) and paid on top:
  `due = total - discount + delivery fee`. Coupons and points take off the goods only.
- **Decided once.** Both are decided from the database's membership record at the moment
  the order is created (a flash order: at its admission, Redis's clock, even when the
  stream consumer writes it later) and kept on the order row: a membership that ends or is
  refunded afterwards changes nothing already ordered, and an expired member pays in full.
- **Refunds return what was paid.** A full refund (cancel, expiry, failed group, return,
  rejected quality hold) returns `paid - refunded`, the fee included. A partial refund by
  units (`coupons.settlement.refund_units`) returns each unit's line (price less its
  largest-remainder share of coupons and points) and the fee only with the order's last
  unit, so refunding every unit one by one returns exactly what was paid. A group closing
  at a lower tier refunds goods only: the fee is owed as long as the order is delivered.

Only the membership read costs anything, and it is skipped when it cannot change the
answer: no member price below the offer and no fee to waive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.membership import domain
from tuanbox.membership.models import MemberPrice
from tuanbox.settings import Settings


@dataclass(frozen=True)
class DeliveryTerms:
    """The platform's delivery fee and its free-delivery threshold (0: none)."""

    fee_cents: int = 0
    free_over_cents: int = 0

    @classmethod
    def of(cls, settings: Settings) -> DeliveryTerms:
        return cls(settings.delivery_fee_cents, settings.free_delivery_over_cents)

    def charges(self, goods_cents: int) -> bool:
        """Whether a non-member would pay a fee on these goods."""
        return (
            domain.delivery_fee_cents(self.fee_cents, self.free_over_cents, goods_cents, False) > 0
        )


NO_FEE = DeliveryTerms()


@dataclass(frozen=True)
class Priced:
    unit_price_cents: int
    delivery_fee_cents: int
    member: bool  # decided from the membership record (False when it could not matter)
    member_price_cents: int | None  # the SKU's member price, when below the offer


def member_price_of(session: Session, sku_id: str) -> int | None:
    return session.scalar(select(MemberPrice.price_cents).where(MemberPrice.sku_id == sku_id))


def member_prices_of(session: Session, sku_ids: list[str]) -> dict[str, int]:
    if not sku_ids:
        return {}
    rows = session.execute(
        select(MemberPrice.sku_id, MemberPrice.price_cents).where(MemberPrice.sku_id.in_(sku_ids))
    )
    return {sku_id: cents for sku_id, cents in rows}


def needs_membership(
    offer_cents: int, qty: int, member_price_cents: int | None, delivery: DeliveryTerms
) -> bool:
    """Whether being a member could change this order's price or fee."""
    cheaper = member_price_cents is not None and member_price_cents < offer_cents
    return cheaper or delivery.charges(offer_cents * qty)


def price(
    offer_cents: int,
    qty: int,
    member_price_cents: int | None,
    delivery: DeliveryTerms,
    *,
    member: bool,
) -> Priced:
    """The unit price and delivery fee for a known membership (pure)."""
    unit = domain.member_unit_cents(offer_cents, member_price_cents, member)
    fee = domain.delivery_fee_cents(
        delivery.fee_cents, delivery.free_over_cents, unit * qty, member
    )
    below = (
        member_price_cents
        if member_price_cents is not None and member_price_cents < offer_cents
        else None
    )
    return Priced(unit, fee, member, below)


def price_order(
    session: Session,
    *,
    user_id: str,
    sku_id: str,
    offer_cents: int,
    qty: int,
    delivery: DeliveryTerms,
    now: datetime | None = None,
) -> Priced:
    """Price one order for this shopper now, reading their membership only if it matters."""
    from tuanbox.membership.services import is_member

    member_price = member_price_of(session, sku_id)
    member = needs_membership(offer_cents, qty, member_price, delivery) and is_member(
        session, user_id, now
    )
    return price(offer_cents, qty, member_price, delivery, member=member)
