"""Console reviews queue: shoppers' reviews, unanswered first, and the merchant's reply."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.console.auth import StaffDep
from tuanbox.console.fence import ConsoleReadDep, remember_write
from tuanbox.console.render import page
from tuanbox.db.base import utcnow
from tuanbox.merchant_orders import queues
from tuanbox.reviews.models import MAX_TEXT

router = APIRouter(include_in_schema=False)


@router.get("/console/reviews", response_class=HTMLResponse)
def reviews_page(
    request: Request, staff: StaffDep, db: ConsoleReadDep, settings: SettingsDep
) -> HTMLResponse:
    items = queues.reviews_queue(db, staff.merchant_id)
    return page(
        request, staff, "orders_reviews.html",
        {"items": items, "unanswered": queues.unanswered_reviews(db, staff.merchant_id),
         "tz": settings.station_timezone, "max_text": MAX_TEXT},
        active="reviews",
    )  # fmt: skip


@router.post("/console/reviews/{review_id}/reply")
def review_reply(
    review_id: str,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    reply: Annotated[str, Form(max_length=MAX_TEXT + 100)],
) -> RedirectResponse:
    """Publish (or correct) the reply; shoppers see it under the review."""
    queues.reply_to_review(
        session, staff.merchant_id, review_id, reply, actor=staff.principal.actor, now=utcnow()
    )
    session.commit()
    response = RedirectResponse(f"/console/reviews#rv-{review_id}", status_code=303)
    remember_write(response, session, settings)  # the queue (replica) shows it at once
    return response
