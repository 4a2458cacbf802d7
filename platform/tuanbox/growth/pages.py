"""Ops' growth page on the dashboard (/ops/invites, its cookie): the leaderboard's reward per
week and month, and platform-wide invite tasks (listed, created).

Renders like the other /ops pages (English); the buttons post JSON through ops.js to actions
that take the ops principal (`OpsUser`: same origin, SameSite cookie, JSON only) and call the
API's own operations (`PUT /api/v1/leaderboard-rewards/{kind}`, `POST /api/v1/invite-tasks`),
which validate and audit every write."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.coupons.models import CouponTemplate
from tuanbox.growth import views as api
from tuanbox.growth.leaderboard import KINDS
from tuanbox.growth.models import InviteTask, LeaderboardReward
from tuanbox.growth.schemas import RewardIn, RewardOut, TaskIn, TaskOut
from tuanbox.ops import auth
from tuanbox.ops.auth import OpsUser

router = APIRouter(tags=["ops"], include_in_schema=False)

SHOWN = 100


@router.get("/ops/invites", response_model=None)
def invites_page(
    request: Request, settings: SettingsDep, session: SessionDep
) -> HTMLResponse | RedirectResponse:
    """The week and month rewards (platform coupon templates to choose from) and the
    platform's invite tasks, newest first."""
    from tuanbox.ops.views import templates

    user = auth.principal_from(request, settings)
    if user is None:
        return RedirectResponse("/ops/login", status_code=303)
    coupon_templates = session.scalars(
        select(CouponTemplate)
        .where(CouponTemplate.merchant_id.is_(None))
        .order_by(CouponTemplate.created_at.desc(), CouponTemplate.id)
        .limit(SHOWN)
    ).all()
    names = {t.id: t.name for t in coupon_templates}
    tasks = session.scalars(
        select(InviteTask)
        .where(InviteTask.merchant_id.is_(None))
        .order_by(InviteTask.created_at.desc(), InviteTask.id)
        .limit(SHOWN)
    ).all()
    context: dict[str, Any] = {
        "user": user,
        "kinds": list(KINDS),
        "rewards": {kind: session.get(LeaderboardReward, kind) for kind in KINDS},
        "coupon_templates": coupon_templates,
        "names": names,
        "tasks": tasks,
    }
    return templates().TemplateResponse(
        request, "invites.html", context, headers={"Cache-Control": "no-store"}
    )


@router.post("/ops/leaderboard-rewards/{kind}")
def set_reward(kind: api.Kind, body: RewardIn, ops: OpsUser, session: SessionDep) -> RewardOut:
    """The page's save button for one period kind (audited by the API's operation)."""
    return api.put_reward(kind, body, ops, session)


@router.post("/ops/invite-tasks", status_code=201)
def create_task(body: TaskIn, ops: OpsUser, session: SessionDep) -> TaskOut:
    """The page's create button: a platform-wide task (no merchant), audited."""
    return api.create_task(body.model_copy(update={"merchant_id": None}), ops, session)
