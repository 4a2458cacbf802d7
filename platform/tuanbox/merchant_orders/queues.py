"""The merchant's work queues: returns to receive, reviews to answer, pre-sale batches.

Reads are scoped to one merchant; an id of another merchant's return or review answers
exactly like a missing one. Writes go through the owning feature (`tuanbox.returns`) or,
for a review reply, are audited here with the reply before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.catalog.models import Product, Sku
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.lockers.models import Station
from tuanbox.orders.domain import Awaiting, OrderStatus
from tuanbox.orders.models import Order
from tuanbox.presale.models import PresaleReceipt
from tuanbox.returns import services as returns
from tuanbox.returns.models import ReturnRequest
from tuanbox.reviews.models import Review
from tuanbox.reviews.services import clean_text

OPEN_RETURNS = ("requested", "dropped_off")
QUEUE_LIMIT = 200


# --- returns ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReturnItem:
    id: str
    order_id: str
    status: str
    method: str
    reason: str
    requested_at: datetime
    dropped_off_at: datetime | None
    received_at: datetime | None
    product: str
    sku: str
    qty: int
    total_cents: int
    station_id: str | None
    courier_tracking: str | None

    @property
    def receivable(self) -> bool:
        return self.status == "dropped_off"


def returns_queue(
    session: Session, merchant_id: str, *, open_only: bool = True, limit: int = QUEUE_LIMIT
) -> list[ReturnItem]:
    """Returns of the merchant's orders: open ones oldest first (those waiting longest)."""
    query = (
        select(ReturnRequest, Order, Product.name, Sku.name)
        .join(Order, Order.id == ReturnRequest.order_id)
        .join(Sku, Sku.id == Order.sku_id)
        .join(Product, Product.id == Sku.product_id)
        .where(Order.merchant_id == merchant_id)
    )
    if open_only:
        query = query.where(ReturnRequest.status.in_(OPEN_RETURNS)).order_by(
            ReturnRequest.created_at, ReturnRequest.id
        )
    else:
        query = query.order_by(ReturnRequest.created_at.desc(), ReturnRequest.id)
    return [
        ReturnItem(
            id=rr.id,
            order_id=rr.order_id,
            status=rr.status,
            method=rr.method,
            reason=rr.reason,
            requested_at=rr.created_at,
            dropped_off_at=rr.dropped_off_at,
            received_at=rr.received_at,
            product=product,
            sku=sku,
            qty=order.qty,
            total_cents=order.total_cents,
            station_id=rr.station_id or order.station_id,
            courier_tracking=rr.courier_tracking,
        )
        for rr, order, product, sku in session.execute(query.limit(limit)).all()
    ]


def receive_return(
    session: Session, merchant_id: str, return_id: str, *, actor: Actor
) -> ReturnRequest:
    """The goods are back with the merchant: the order is returned and refunded in full.

    Receiving twice answers the same return (`tuanbox.returns.services.mark_received`)."""
    owner = session.scalar(
        select(Order.merchant_id)
        .join(ReturnRequest, ReturnRequest.order_id == Order.id)
        .where(ReturnRequest.id == return_id)
    )
    if owner != merchant_id:
        raise NotFoundError("return not found", field="return_id")
    return returns.mark_received(session, return_id, actor)


# --- reviews ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewItem:
    id: str
    order_id: str
    product: str
    rating: int
    text: str
    created_at: datetime
    reply: str | None
    replied_at: datetime | None


def reviews_queue(
    session: Session,
    merchant_id: str,
    *,
    unanswered_only: bool = False,
    limit: int = QUEUE_LIMIT,
) -> list[ReviewItem]:
    """The merchant's reviews, unanswered first, then newest first."""
    query = (
        select(Review, Product.name)
        .join(Product, Product.id == Review.product_id)
        .where(Review.merchant_id == merchant_id)
        .order_by(Review.replied_at.is_not(None), Review.created_at.desc(), Review.id)
    )
    if unanswered_only:
        query = query.where(Review.merchant_reply.is_(None))
    return [
        ReviewItem(
            r.id, r.order_id, name, r.rating, r.text, r.created_at, r.merchant_reply, r.replied_at
        )
        for r, name in session.execute(query.limit(limit)).all()
    ]


def unanswered_reviews(session: Session, merchant_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Review)
            .where(Review.merchant_id == merchant_id, Review.merchant_reply.is_(None))
        )
        or 0
    )


def reply_to_review(
    session: Session, merchant_id: str, review_id: str, text: str, *, actor: Actor, now: datetime
) -> Review:
    """Write (or correct) the merchant's public reply to a review; shoppers see it on the
    campaign and order pages. The same text again changes nothing."""
    review = session.scalars(
        select(Review).where(Review.id == review_id).with_for_update()
    ).one_or_none()
    if review is None or review.merchant_id != merchant_id:
        raise NotFoundError("review not found", field="review_id")
    text = clean_text(text)
    if not text:
        raise InvalidInputError("write a reply first", field="reply")
    if review.merchant_reply == text:
        return review
    before = review.merchant_reply
    review.merchant_reply = text
    review.replied_at = now
    record(
        session,
        actor,
        "review.reply",
        "review",
        review.id,
        reason="merchant replied" if before is None else "merchant corrected the reply",
        before={"reply": before},
        after={"reply": text},
    )
    session.flush()
    return review


# --- pre-sale ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptLine:
    station_id: str
    station: str
    qty: int
    received_at: datetime
    received_by: str
    trace_event_id: str


@dataclass(frozen=True)
class StationDemand:
    """Orders of a pre-sale still waiting for the batch at one station's hub."""

    station_id: str | None
    station: str
    orders: int
    qty: int


@dataclass(frozen=True)
class PresaleCampaign:
    id: str
    title: str
    ends_at: datetime
    lot_code: str | None
    receipts: list[ReceiptLine]
    waiting: list[StationDemand]


def presale_campaigns(
    session: Session, merchant_id: str, *, limit: int = 50
) -> list[PresaleCampaign]:
    """The merchant's pre-sale campaigns, newest end first, with their receipts at the hubs
    and what is still waiting to be received where."""
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.merchant_id == merchant_id, Campaign.presale.is_(True))
        .order_by(Campaign.ends_at.desc(), Campaign.id)
        .limit(limit)
    ).all()
    out = []
    for campaign in campaigns:
        receipts = [
            ReceiptLine(
                r.station_id,
                name or r.station_id,
                r.qty,
                r.received_at,
                r.received_by,
                r.trace_event_id,
            )
            for r, name in session.execute(
                select(PresaleReceipt, Station.name)
                .outerjoin(Station, Station.id == PresaleReceipt.station_id)
                .where(PresaleReceipt.campaign_id == campaign.id)
                .order_by(PresaleReceipt.received_at)
            ).all()
        ]
        waiting = [
            StationDemand(station_id, name or station_id or "", int(n), int(qty))
            for station_id, name, n, qty in session.execute(
                select(Order.station_id, Station.name, func.count(Order.id), func.sum(Order.qty))
                .join(Group, Group.id == Order.group_id)
                .outerjoin(Station, Station.id == Order.station_id)
                .where(
                    Group.campaign_id == campaign.id,
                    Order.status == OrderStatus.PAID,
                    Order.awaiting == Awaiting.RECEIVING,
                )
                .group_by(Order.station_id, Station.name)
                .order_by(Order.station_id)
            ).all()
        ]
        out.append(
            PresaleCampaign(
                campaign.id, campaign.title, campaign.ends_at, campaign.lot_code, receipts, waiting
            )
        )
    return out


def own_campaign(session: Session, merchant_id: str, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.merchant_id != merchant_id:
        raise NotFoundError("campaign not found", field="campaign_id")
    return campaign
