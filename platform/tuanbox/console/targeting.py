"""Console segments, pushes and experiments: segments with live counts, a push to one,
experiments on a campaign's title or image and each one's results per arm."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.audit.services import record
from tuanbox.console.auth import StaffDep
from tuanbox.console.render import page
from tuanbox.coupons.models import CouponTemplate
from tuanbox.errors import InvalidInputError, NotFoundError
from tuanbox.experiments import services as experiments
from tuanbox.experiments.exposure import forget
from tuanbox.groupbuy.models import Campaign
from tuanbox.segments import pushes, services

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=500)]
Short = Annotated[str, Form(max_length=200)]


def _segments_page(
    request: Request, staff: StaffDep, session: SessionDep, problems: list[str], status: int
) -> HTMLResponse:
    templates = session.scalars(
        select(CouponTemplate)
        .where(CouponTemplate.merchant_id == staff.merchant_id)
        .order_by(CouponTemplate.name)
        .limit(100)
    )
    return page(
        request, staff, "targeting_segments.html",
        {"segments": services.listing(session, staff.merchant_id),
         "pushes": pushes.recent(session, staff.merchant_id),
         "templates": [(t.id, t.name) for t in templates], "problems": problems},
        active="segments", status_code=status,
    )  # fmt: skip


@router.get("/console/segments", response_class=HTMLResponse)
def segments_page(request: Request, staff: StaffDep, session: SessionDep) -> HTMLResponse:
    return _segments_page(request, staff, session, [], 200)


@router.post("/console/segments", response_model=None)
def create_segment(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    name: Annotated[str, Form(max_length=80)],
    kind: Annotated[str, Form(max_length=10)],
    r_min: Annotated[int, Form(ge=1, le=5)] = 1,
    m_min: Annotated[int, Form(ge=1, le=5)] = 1,
    days: Annotated[int, Form(ge=1, le=3650)] = 30,
    tag: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse | RedirectResponse:
    rules: dict[str, dict[str, Any]] = {
            "rfm": {"kind": "rfm", "r_min": r_min, "m_min": m_min},
            "dormant": {"kind": "dormant", "days": days},
            "tag": {"kind": "tag", "tag": tag}}  # fmt: skip
    rule = rules.get(kind, {"kind": kind})
    try:
        row = services.create(session, staff.merchant_id, name, rule)
    except InvalidInputError as exc:
        return _segments_page(request, staff, session, [exc.detail], 422)
    record(session, staff.principal.actor, "segment.create", "segment", row.id,
           after={"name": row.name, "rule": row.rule})  # fmt: skip
    session.commit()
    return RedirectResponse("/console/segments", status_code=303)


@router.post("/console/segments/{segment_id}/push", response_model=None)
def push_segment(
    request: Request,
    segment_id: str,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    kind: Annotated[str, Form(max_length=10)],
    key: Annotated[str, Form(max_length=64)] = "",
    message: Text = "",
    coupon_template_id: Annotated[str, Form(max_length=36)] = "",
) -> HTMLResponse | RedirectResponse:
    """Send now; the form's key (made when the page was drawn) makes a double submit one push."""
    services.get(session, staff.merchant_id, segment_id)
    if coupon_template_id:
        template = session.get(CouponTemplate, coupon_template_id)
        if template is None or template.merchant_id != staff.merchant_id:
            raise NotFoundError("coupon template not found")
    try:
        result = pushes.send(
            session, settings, merchant_id=staff.merchant_id, segment_id=segment_id, kind=kind,
            key=f"{staff.merchant_id}:console:{key or uuid.uuid4().hex}",
            coupon_template_id=coupon_template_id or None, message=message or None,
        )  # fmt: skip
    except InvalidInputError as exc:
        session.rollback()
        return _segments_page(request, staff, session, [exc.detail], 422)
    record(session, staff.principal.actor, "segment.push", "segment", segment_id,
           details={"push_id": result.push_id, "kind": kind,
                    "coupon_template_id": coupon_template_id or None})  # fmt: skip
    session.commit()
    return RedirectResponse("/console/segments#pushes", status_code=303)


def _experiments_page(
    request: Request, staff: StaffDep, session: SessionDep, problems: list[str], status: int
) -> HTMLResponse:
    campaigns = session.scalars(
        select(Campaign)
        .where(Campaign.merchant_id == staff.merchant_id)
        .order_by(Campaign.created_at.desc())
        .limit(100)
    )
    return page(
        request, staff, "targeting_experiments.html",
        {"experiments": experiments.listing(session, staff.merchant_id),
         "campaigns": [(c.id, c.title) for c in campaigns], "problems": problems},
        active="experiments", status_code=status,
    )  # fmt: skip


@router.get("/console/experiments", response_class=HTMLResponse)
def experiments_page(request: Request, staff: StaffDep, session: SessionDep) -> HTMLResponse:
    return _experiments_page(request, staff, session, [], 200)


@router.post("/console/experiments", response_model=None)
def create_experiment(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    campaign_id: Annotated[str, Form(max_length=36)],
    name: Annotated[str, Form(max_length=80)],
    field: Annotated[str, Form(max_length=10)],
    value_a: Short,
    value_b: Short,
    weight_a: Annotated[int, Form(ge=1, le=1000)] = 50,
    weight_b: Annotated[int, Form(ge=1, le=1000)] = 50,
) -> HTMLResponse | RedirectResponse:
    arms = [
        {"key": "A", "weight": weight_a, "value": value_a},
        {"key": "B", "weight": weight_b, "value": value_b},
    ]
    try:
        row = experiments.create(
            session, staff.merchant_id, campaign_id=campaign_id, name=name, field=field,
            arms=arms, min_sample=settings.experiments_min_sample,
        )  # fmt: skip
    except InvalidInputError as exc:
        return _experiments_page(request, staff, session, [exc.detail], 422)
    record(session, staff.principal.actor, "experiment.create", "experiment", row.id,
           after={"campaign_id": campaign_id, "field": field, "arms": arms})  # fmt: skip
    session.commit()
    forget(campaign_id)
    return RedirectResponse(f"/console/experiments/{row.id}", status_code=303)


@router.get("/console/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(
    request: Request, experiment_id: str, staff: StaffDep, session: SessionDep
) -> HTMLResponse:
    row = experiments.get(session, staff.merchant_id, experiment_id)
    campaign = session.get(Campaign, row.campaign_id)
    arms = experiments.results(session, row)
    return page(
        request, staff, "targeting_experiment.html",
        {"x": row, "arms": arms, "campaign": campaign,
         "most": max([a.exposures for a in arms] + [1])},
        active="experiments",
    )  # fmt: skip


@router.post("/console/experiments/{experiment_id}/stop")
def stop_experiment(experiment_id: str, staff: StaffDep, session: SessionDep) -> RedirectResponse:
    row = experiments.stop(session, staff.merchant_id, experiment_id)
    record(session, staff.principal.actor, "experiment.stop", "experiment", row.id,
           after={"status": row.status})  # fmt: skip
    session.commit()
    forget(row.campaign_id)
    return RedirectResponse(f"/console/experiments/{experiment_id}", status_code=303)


def _nav_labels() -> None:
    """Never called: lets the catalog extractor see this module's nav msgids."""
    from tuanbox.console.i18n import gettext_for

    _ = gettext_for("en")
    _("Segments"), _("Experiments")
