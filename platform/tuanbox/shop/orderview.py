"""What the order and pickup pages show of one order, read as plain view objects.

The timeline has six steps (paid, confirmed, delivery wave, at the station hub, in the
locker, picked up), each reached when the order's history says so; statuses off that path
(cancelled, refunded, on hold, returns) are said in words beside it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.catalog.models import Lot, Merchant, Product, ProductImage, Sku
from tuanbox.fulfilment.models import Booking, FulfilmentOrder
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.groupbuy.services import as_utc
from tuanbox.lockers.models import Compartment, Station
from tuanbox.orders.models import Order
from tuanbox.orders.services import history
from tuanbox.returns.models import ReturnRequest
from tuanbox.returns.services import RETURNABLE_FROM
from tuanbox.reviews.models import Review
from tuanbox.reviews.services import review_of
from tuanbox.shop.perks import Perks

Gettext = Callable[[str], str]
MAX_LISTED = 50
# The timeline's steps, in order, and the order status that reaches each (the wave step is
# reached when the order is given a wave, which confirmation does).
STEPS = ("paid", "confirmed", "wave", "hub", "locker", "picked_up")
REACHED_BY = {
    "paid": "paid",
    "confirmed": "confirmed",
    "hub": "allocated",
    "locker": "ready_for_pickup",
    "picked_up": "picked_up",
}
# The order's own answer to "is something still going to change?": pages poll while it is.
SETTLED = frozenset({"completed", "cancelled", "expired", "refunded", "returned"})


def status_words(_: Gettext, status: str, awaiting: str | None) -> str:
    """An order's status as the shopper reads it."""
    if status == "paid":
        waiting = {
            "group": _("Paid · waiting for the group to fill"),
            "merchant": _("Paid · waiting for the seller to accept"),
            "receiving": _("Paid · waiting for the batch to arrive"),
            "station": _("Paid · choose a pickup station"),
            "review": _("Paid · being checked"),
        }
        return waiting.get(awaiting or "", _("Paid"))
    words = {
        "pending_payment": _("Waiting for payment"),
        "confirmed": _("Confirmed · ships in the next delivery wave"),
        "allocated": _("At the station hub"),
        "ready_for_pickup": _("In the locker · ready for pickup"),
        "picked_up": _("Picked up"),
        "completed": _("Picked up"),
        "cancelled": _("Cancelled"),
        "expired": _("Expired"),
        "refunded": _("Refunded"),
        "quality_hold": _("On hold for a quality check"),
        "return_requested": _("Return requested"),
        "returned": _("Returned"),
    }
    return words.get(status, status)


def return_words(_: Gettext, status: str) -> str:
    words = {
        "requested": _("Return requested: bring it back to the locker or hand it to the courier"),
        "dropped_off": _("Return dropped off: the seller will check it"),
        "received": _("Return received: refund on its way"),
        "refunded": _("Return refunded"),
        "withdrawn": _("Return withdrawn"),
    }
    return words.get(status, status)


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    at: str | None
    state: str  # done | current | todo


@dataclass(frozen=True)
class PickupView:
    """Where the parcel waits (the QR itself is made by the pickup page)."""

    booking: Booking
    compartment: Compartment
    station_name: str
    station_address: str
    locker_id: str
    label: str
    deadline: datetime | None


@dataclass
class OrderView:
    order: Order
    status_text: str
    product_name: str
    sku_name: str
    merchant_name: str
    image: str | None
    station: Station | None
    steps: list[Step]
    trace_url: str | None
    campaign_id: str | None
    group: Group | None
    pickup: PickupView | None
    return_row: ReturnRequest | None
    return_text: str | None
    returnable_until: datetime | None
    review: Review | None
    reviewable: bool
    live: bool
    version: str
    notes: list[str] = field(default_factory=list)
    # The delivery fee and member price as the pages show them (`shop.perks`).
    perks: Perks | None = None

    @property
    def id(self) -> str:
        return self.order.id

    @property
    def payable(self) -> bool:
        return self.order.status == "pending_payment"


def own_order(session: Session, order_id: str, user_id: str) -> Order | None:
    """The order if it is this shopper's; another's reads exactly like a missing one."""
    order = session.get(Order, order_id)
    return order if order is not None and order.user_id == user_id else None


def my_orders(session: Session, user_id: str) -> list[Order]:
    return list(
        session.scalars(
            select(Order)
            .where(Order.user_id == user_id)
            .order_by(Order.created_at.desc())
            .limit(MAX_LISTED)
        )
    )


def product_names(session: Session, orders: list[Order]) -> dict[str, str]:
    """SKU id → "product · sku" for a list of orders, in two queries."""
    skus = {
        s.id: s for s in session.scalars(select(Sku).where(Sku.id.in_({o.sku_id for o in orders})))
    }
    products = {
        p.id: p
        for p in session.scalars(
            select(Product).where(Product.id.in_({s.product_id for s in skus.values()}))
        )
    }
    return {sid: products[s.product_id].name for sid, s in skus.items()}


def _campaign(session: Session, order: Order) -> tuple[Group | None, Campaign | None]:
    if not order.group_id:
        return None, None
    group = session.get(Group, order.group_id)
    return group, session.get(Campaign, group.campaign_id) if group else None


def trace_url(session: Session, product: Product, campaign: Campaign | None) -> str | None:
    """The consumer trace page of the order's lot: the campaign's lot, else the product's
    newest lot; None when the product has no GTIN or no lot yet."""
    if not product.gtin:
        return None
    lot = campaign.lot_code if campaign is not None and campaign.lot_code else None
    if lot is None:
        lot = session.scalars(
            select(Lot.lot_code)
            .where(Lot.product_id == product.id, Lot.gtin == product.gtin)
            .order_by(Lot.created_at.desc())
        ).first()
    return f"/01/{product.gtin}/10/{lot}" if lot else None


def pickup_of(session: Session, order: Order) -> PickupView | None:
    """The booking of a parcel waiting in its locker, or None."""
    fo = session.get(FulfilmentOrder, order.id)
    booking = session.get(Booking, fo.booking_id) if fo is not None and fo.booking_id else None
    if booking is None or booking.state != "deposited" or order.status != "ready_for_pickup":
        return None
    comp = session.get(Compartment, booking.compartment_id)
    station = session.get(Station, booking.station_id)
    assert comp is not None and station is not None  # FKs
    deadline = as_utc(booking.pickup_deadline) if booking.pickup_deadline else None
    return PickupView(booking, comp, station.name, station.address, booking.locker_id,
                      comp.label, deadline)  # fmt: skip


def _steps(
    _: Gettext, order: Order, reached: dict[str, datetime], clock: Callable[[datetime], str]
) -> list[Step]:
    labels = {
        "paid": _("Paid"),
        "confirmed": _("Confirmed"),
        "wave": _("In a delivery wave"),
        "hub": _("At the station hub"),
        "locker": _("In the locker"),
        "picked_up": _("Picked up"),
    }
    at: dict[str, str | None] = {k: clock(v) for k, v in reached.items()}
    wave = order.wave
    if wave is not None:
        reached.setdefault("wave", wave.cutoff_at)
        at["wave"] = _("Leaves %(when)s") % {"when": clock(as_utc(wave.departs_at))}
    last = max((STEPS.index(k) for k in reached), default=-1)
    steps = []
    for index, key in enumerate(STEPS):
        state = "done" if index < last else "current" if index == last else "todo"
        steps.append(Step(key, labels[key], at.get(key) if index <= last else None, state))
    return steps


def build(
    session: Session,
    order: Order,
    _: Gettext,
    *,
    clock: Callable[[datetime], str],
    now: datetime,
    return_window_days: int,
) -> OrderView:
    sku = session.get(Sku, order.sku_id)
    assert sku is not None  # FK
    product = session.get(Product, sku.product_id)
    merchant = session.get(Merchant, order.merchant_id)
    assert product is not None and merchant is not None  # FKs
    image = session.scalars(
        select(ProductImage.filename)
        .where(ProductImage.product_id == product.id)
        .order_by(ProductImage.position)
    ).first()
    group, campaign = _campaign(session, order)
    reached: dict[str, datetime] = {}
    for move in history(session, order.id):
        for step, status in REACHED_BY.items():
            if move.to_status == status:
                reached.setdefault(step, as_utc(move.at))
    if order.picked_up_at is not None:
        reached.setdefault("picked_up", as_utc(order.picked_up_at))
    return_row = session.scalars(
        select(ReturnRequest).where(ReturnRequest.order_id == order.id)
    ).one_or_none()
    review = review_of(session, order.id)
    picked = as_utc(order.picked_up_at) if order.picked_up_at else None
    window_end = picked + timedelta(days=return_window_days) if picked else None
    returnable = (
        product.returnable
        and order.status in RETURNABLE_FROM
        and window_end is not None
        and now <= window_end
        and (return_row is None or return_row.status == "withdrawn")
    )
    station = session.get(Station, order.station_id) if order.station_id else None
    pickup = pickup_of(session, order)
    notes = []
    if order.refunded_cents:
        notes.append(_("Refunded %(amount)s") % {"amount": _money(order.refunded_cents)})
    fingerprint = "|".join(
        str(x)
        for x in (
            order.status,
            order.awaiting,
            order.wave_id,
            order.refunded_cents,
            pickup.booking.id if pickup else None,
            return_row.status if return_row else None,
            review.id if review else None,
        )
    )
    return OrderView(
        order=order,
        status_text=status_words(_, order.status, order.awaiting),
        product_name=product.name,
        sku_name=sku.name,
        merchant_name=merchant.name,
        image=f"/media/{image}" if image else None,
        station=station,
        steps=_steps(_, order, reached, clock),
        trace_url=trace_url(session, product, campaign),
        campaign_id=campaign.id if campaign else None,
        group=group,
        pickup=pickup,
        return_row=return_row,
        return_text=return_words(_, return_row.status) if return_row else None,
        returnable_until=window_end if returnable else None,
        review=review,
        reviewable=picked is not None and review is None,
        live=order.status not in SETTLED
        or (
            return_row is not None and return_row.status in ("requested", "dropped_off", "received")
        ),
        version=hashlib.sha256(fingerprint.encode()).hexdigest()[:16],
        notes=notes,
    )


def _money(cents: int) -> str:
    from tuanbox.shop.render import money

    return money(cents)
