"""Risk review API for ops (`/api/v1/ops/risk/…`): the queue, approve, reject, the rules."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import OpsOrAdmin
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.bounds import MAX_INT64
from tuanbox.risk import review as queue
from tuanbox.risk.decisions import ruleset_of
from tuanbox.risk.models import RiskHold, RiskReview

router = APIRouter(prefix="/api/v1/ops/risk", tags=["risk"])

ReviewId = Annotated[int, Path(ge=1, le=MAX_INT64, examples=[42])]
# Free text that ends up in the audit log: no NUL or other control characters but newlines.
_PRINTABLE = r"^[^\x00-\x09\x0b-\x1f\x7f]*$"


class ReviewOut(BaseModel):
    """A risk decision waiting for (or decided by) ops, with the rules that fired and why."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime
    updated_at: datetime
    subject_type: str = Field(description="order, user or group")
    subject_id: str
    user_id: str | None
    event: str = Field(description="what was screened: signup, order, join, checkout, …")
    score: int
    action: str = Field(description="review (orders held) or block (refused)")
    status: str = Field(description="open, approved or rejected")
    hits: list[dict[str, Any]] = Field(description="each fired rule: score, counts, accounts")
    evidence: dict[str, Any]
    attempts: int = Field(description="decisions about this subject while the review was open")
    held_orders: list[str] = Field(default_factory=list)
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_note: str | None = None


class DecisionIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"note": "one family, four phones; called the buyer"}]}
    )

    note: Annotated[str, Field(min_length=3, max_length=500, pattern=_PRINTABLE)]


class DecisionOut(BaseModel):
    review: ReviewOut
    confirmed: list[str] = Field(description="held, paid orders confirmed by the approval")
    released: list[str] = Field(description="orders no longer held (not yet at confirmation)")
    still_held: list[str] = Field(description="orders another open review still holds")
    cancelled: list[str] = Field(description="orders the rejection cancelled (paid: refunded)")
    untouched: list[str] = Field(description="orders already on their way to a locker")


def reviews_out(session: Session, reviews: list[RiskReview]) -> list[ReviewOut]:
    held: dict[int, list[str]] = {}
    if reviews:
        rows = session.execute(
            select(RiskHold.review_id, RiskHold.order_id)
            .where(RiskHold.review_id.in_([r.id for r in reviews]))
            .order_by(RiskHold.order_id)
        ).all()
        for review_id, order_id in rows:
            held.setdefault(review_id, []).append(order_id)
    out = []
    for review in reviews:
        item = ReviewOut.model_validate(review)
        item.held_orders = held.get(review.id, [])
        out.append(item)
    return out


def decision_out(session: Session, decision: queue.Decision) -> DecisionOut:
    return DecisionOut(
        review=reviews_out(session, [decision.review])[0],
        confirmed=decision.confirmed,
        released=decision.released,
        still_held=decision.still_held,
        cancelled=decision.cancelled,
        untouched=decision.untouched,
    )


@router.get("/reviews", response_model=list[ReviewOut], responses=problems(401, 403, 422))
def list_reviews(
    user: OpsOrAdmin,
    session: SessionDep,
    status: Annotated[str, Query(pattern="^(open|approved|rejected)$")] = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_INT64)] = None,
) -> list[ReviewOut]:
    """Ops: the review queue, newest first (`before_id` pages on)."""
    reviews = queue.list_reviews(session, status=status, limit=limit, before_id=before_id)
    return reviews_out(session, reviews)


@router.get("/reviews/{review_id}", response_model=ReviewOut, responses=problems(401, 403, 404))
def get_review(review_id: ReviewId, user: OpsOrAdmin, session: SessionDep) -> ReviewOut:
    """Ops: one review with its evidence and held orders."""
    return reviews_out(session, [queue.get_review(session, review_id)])[0]


@router.post(
    "/reviews/{review_id}/approve",
    response_model=DecisionOut,
    responses=problems(401, 403, 404, 409, 422),
)
def approve(
    review_id: ReviewId, body: DecisionIn, user: OpsOrAdmin, session: SessionDep
) -> DecisionOut:
    """Ops: a false alarm. Held orders go on (paid ones waiting for it are confirmed); audited.
    409 `REVIEW_ALREADY_DECIDED` for a review decided before."""
    decision = queue.approve(session, review_id, user.actor, body.note)
    session.commit()
    return decision_out(session, decision)


@router.post(
    "/reviews/{review_id}/reject",
    response_model=DecisionOut,
    responses=problems(401, 403, 404, 409, 422),
)
def reject(
    review_id: ReviewId, body: DecisionIn, user: OpsOrAdmin, session: SessionDep
) -> DecisionOut:
    """Ops: the decision stands. Held orders not yet on their way are cancelled and refunded
    in full; the account's later events score `rejected_before`. Audited."""
    decision = queue.reject(session, review_id, user.actor, body.note)
    session.commit()
    return decision_out(session, decision)


@router.get("/rules", responses=problems(401, 403))
def rules(user: OpsOrAdmin, settings: SettingsDep) -> dict[str, Any]:
    """Ops: the rules in force (defaults with TUANBOX_RISK_RULES applied) and the thresholds."""
    return ruleset_of(settings).describe()
