"""Review use cases: write the one review of a picked-up order; read a product's reviews."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.catalog.models import Sku
from tuanbox.orders.errors import OrderNotFoundError
from tuanbox.orders.services import lock_order
from tuanbox.reviews.errors import AlreadyReviewedError, InvalidReviewError, NotReviewableError
from tuanbox.reviews.models import MAX_TEXT, Review

# Newlines are fine in a review; other control characters (NUL included) are not.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").strip()
    if len(text) > MAX_TEXT or _CONTROL.search(text):
        raise InvalidReviewError(f"a review is at most {MAX_TEXT} characters of plain text")
    return text


def review_of(session: Session, order_id: str) -> Review | None:
    return session.scalars(select(Review).where(Review.order_id == order_id)).one_or_none()


def write_review(
    session: Session, order_id: str, user_id: str, *, rating: int, text: str, now: datetime
) -> Review:
    """The shopper's one review of an order they picked up (rating 1–5, text optional)."""
    if not 1 <= rating <= 5:
        raise InvalidReviewError("the rating is 1 to 5 stars")
    text = clean_text(text)
    try:
        order = lock_order(session, order_id)
    except OrderNotFoundError:
        raise NotReviewableError("no such order of yours") from None
    if order.user_id != user_id:
        raise NotReviewableError("no such order of yours")
    if order.picked_up_at is None:
        raise NotReviewableError("an order can be reviewed once it is picked up")
    if review_of(session, order.id) is not None:
        raise AlreadyReviewedError("this order has its review already")
    sku = session.get(Sku, order.sku_id)
    assert sku is not None  # FK
    row = Review(
        order_id=order.id,
        user_id=user_id,
        product_id=sku.product_id,
        merchant_id=order.merchant_id,
        rating=rating,
        text=text,
        created_at=now,
        updated_at=now,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:  # the same order reviewed twice at once
        raise AlreadyReviewedError("this order has its review already") from exc
    return row


@dataclass(frozen=True)
class ProductReviews:
    items: list[Review]
    count: int
    average: float | None


def for_product(session: Session, product_id: str, limit: int = 20) -> ProductReviews:
    """A product's reviews, newest first (at most ``limit``), with their count and average."""
    count, average = session.execute(
        select(func.count(Review.id), func.avg(Review.rating)).where(
            Review.product_id == product_id
        )
    ).one()
    items = list(
        session.scalars(
            select(Review)
            .where(Review.product_id == product_id)
            .order_by(Review.created_at.desc(), Review.id)
            .limit(limit)
        )
    )
    return ProductReviews(items, int(count), float(average) if average is not None else None)
