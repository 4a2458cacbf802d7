"""The risk section of the ops dashboard: `/ops/risk`, and its approve and reject buttons.

The page and its actions live under `/ops`, whose cookie (`tuanbox.ops.auth`) the browser
sends; the same decisions are in the JSON API for scripts (`tuanbox.risk.views`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.ops import auth
from tuanbox.ops.auth import OpsUser
from tuanbox.risk import review as queue
from tuanbox.risk.decisions import ruleset_of
from tuanbox.risk.views import DecisionIn, DecisionOut, ReviewId, decision_out, reviews_out

router = APIRouter(tags=["ops"], include_in_schema=False)


@router.get("/ops/risk", response_model=None)
def risk_page(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    status: Annotated[str, Query(pattern="^(open|approved|rejected)$")] = "open",
) -> HTMLResponse | RedirectResponse:
    from tuanbox.ops.views import templates

    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    reviews = reviews_out(session, queue.list_reviews(session, status=status, limit=100))
    context: dict[str, Any] = {
        "user": user,
        "reviews": reviews,
        "status": status,
        "open_count": queue.open_count(session),
        "rules": ruleset_of(settings).describe(),
    }
    return templates().TemplateResponse(
        request, "risk.html", context, headers={"Cache-Control": "no-store"}
    )


@router.post("/ops/risk/reviews/{review_id}/approve", response_model=DecisionOut)
def approve(
    review_id: ReviewId, body: DecisionIn, user: OpsUser, session: SessionDep
) -> DecisionOut:
    decision = queue.approve(session, review_id, user.actor, body.note)
    session.commit()
    return decision_out(session, decision)


@router.post("/ops/risk/reviews/{review_id}/reject", response_model=DecisionOut)
def reject(
    review_id: ReviewId, body: DecisionIn, user: OpsUser, session: SessionDep
) -> DecisionOut:
    decision = queue.reject(session, review_id, user.actor, body.note)
    session.commit()
    return decision_out(session, decision)
