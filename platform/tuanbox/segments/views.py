"""Segments, pushes and experiments API for merchant staff (their own merchant only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from tuanbox.accounts.deps import Principal, require_roles
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import record
from tuanbox.coupons.models import CouponTemplate
from tuanbox.errors import NotFoundError
from tuanbox.experiments import services as experiments
from tuanbox.experiments.models import Experiment
from tuanbox.segments import pushes, services
from tuanbox.segments.schemas import (
    ArmOut,
    ExperimentIn,
    ExperimentOut,
    PushIn,
    PushOut,
    SegmentIn,
    SegmentOut,
)

router = APIRouter(prefix="/api/v1", tags=["segments"])
Staff = Annotated[Principal, Depends(require_roles("merchant_staff"))]
PathId = Annotated[str, Path(min_length=1, max_length=36)]


def _merchant(user: Principal) -> str:
    if not user.merchant_id:
        raise NotFoundError("no merchant")
    return user.merchant_id


@router.get("/segments", response_model=list[SegmentOut], responses=problems(401, 403))
def list_segments(user: Staff, session: SessionDep) -> list[SegmentOut]:
    """The merchant's segments with their live member counts."""
    return [
        SegmentOut(id=s.id, name=s.name, rule=s.rule, members=n)
        for s, n in services.listing(session, _merchant(user))
    ]


@router.post(
    "/segments", status_code=201, response_model=SegmentOut, responses=problems(401, 403, 422)
)
def create_segment(body: SegmentIn, user: Staff, session: SessionDep) -> SegmentOut:
    """A named segment by rule: RFM minimums, dormant for N days, or a tag."""
    row = services.create(session, _merchant(user), body.name, body.rule.stored())
    record(session, user.actor, "segment.create", "segment", row.id,
           after={"name": row.name, "rule": row.rule})  # fmt: skip
    session.commit()
    return SegmentOut(id=row.id, name=row.name, rule=row.rule, members=services.count(session, row))


def push_out(stats: pushes.PushStats) -> PushOut:
    return PushOut(
        push_id=stats.push.id,
        sent=stats.sent,
        rate_limited=stats.rate_limited,
        skipped=stats.skipped,
        converted=stats.converted,
    )


@router.post(
    "/segments/{segment_id}/pushes",
    response_model=PushOut,
    responses=problems(401, 403, 404, 422),
)
def push_to_segment(
    segment_id: PathId, body: PushIn, user: Staff, session: SessionDep, settings: SettingsDep
) -> PushOut:
    """Send a coupon or a message to the segment; the same key again sends nothing twice."""
    merchant = _merchant(user)
    services.get(session, merchant, segment_id)
    if body.coupon_template_id is not None:
        template = session.get(CouponTemplate, body.coupon_template_id)
        if template is None or template.merchant_id != merchant:
            raise NotFoundError("coupon template not found", field="coupon_template_id")
    result = pushes.send(
        session,
        settings,
        merchant_id=merchant,
        segment_id=segment_id,
        kind=body.kind,
        key=f"{merchant}:{body.key}",
        coupon_template_id=body.coupon_template_id,
        message=body.message,
    )
    record(session, user.actor, "segment.push", "segment", segment_id,
           details={"push_id": result.push_id, "kind": body.kind,
                    "coupon_template_id": body.coupon_template_id})  # fmt: skip
    session.commit()
    return push_out(pushes.stats(session, merchant, result.push_id))


@router.get("/pushes/{push_id}", response_model=PushOut, responses=problems(401, 403, 404))
def push_stats(push_id: PathId, user: Staff, session: SessionDep) -> PushOut:
    """Delivery and conversion of one push."""
    return push_out(pushes.stats(session, _merchant(user), push_id))


def experiment_out(session: SessionDep, row: Experiment, with_arms: bool) -> ExperimentOut:
    arms = []
    if with_arms:
        for arm in experiments.results(session, row):
            arms.append(
                ArmOut(
                    key=arm.key,
                    value=arm.value,
                    weight=arm.weight,
                    exposures=arm.exposures,
                    clicks=arm.clicks,
                    conversions=arm.conversions,
                    ctr=arm.ctr,
                    conversion_rate=arm.conversion_rate,
                    z=arm.test.z if arm.test else None,
                    p_value=arm.test.p_value if arm.test else None,
                    under_sample=arm.under_sample,
                )
            )
    return ExperimentOut(
        id=row.id,
        campaign_id=row.campaign_id,
        name=row.name,
        field=row.field,
        status=row.status,
        min_sample=row.min_sample,
        arms=arms,
    )


@router.get("/experiments", response_model=list[ExperimentOut], responses=problems(401, 403))
def list_experiments(user: Staff, session: SessionDep) -> list[ExperimentOut]:
    """The merchant's A/B tests, latest started first, with their figures per arm."""
    return [
        experiment_out(session, e, False) for e in experiments.listing(session, _merchant(user))
    ]


@router.post(
    "/experiments",
    status_code=201,
    response_model=ExperimentOut,
    responses=problems(401, 403, 404, 409, 422),
)
def create_experiment(body: ExperimentIn, user: Staff, session: SessionDep) -> ExperimentOut:
    """An A/B test of a campaign's title or main image (the first arm is the control)."""
    row = experiments.create(
        session,
        _merchant(user),
        campaign_id=body.campaign_id,
        name=body.name,
        field=body.field,
        arms=[a.model_dump() for a in body.arms],
        min_sample=body.min_sample,
    )
    record(session, user.actor, "experiment.create", "experiment", row.id,
           after={"campaign_id": row.campaign_id, "field": row.field,
                  "arms": [a.model_dump() for a in body.arms]})  # fmt: skip
    session.commit()
    return experiment_out(session, row, True)


@router.get(
    "/experiments/{experiment_id}",
    response_model=ExperimentOut,
    responses=problems(401, 403, 404),
)
def experiment_results(experiment_id: PathId, user: Staff, session: SessionDep) -> ExperimentOut:
    """Per arm: exposures, clicks, conversions, rates and the z-test against the control."""
    return experiment_out(session, experiments.get(session, _merchant(user), experiment_id), True)


@router.post(
    "/experiments/{experiment_id}/stop",
    response_model=ExperimentOut,
    responses=problems(401, 403, 404),
)
def stop_experiment(experiment_id: PathId, user: Staff, session: SessionDep) -> ExperimentOut:
    """End the test: shoppers see the campaign as it is again; the figures stay."""
    row = experiments.stop(session, _merchant(user), experiment_id)
    record(session, user.actor, "experiment.stop", "experiment", row.id,
           after={"status": row.status})  # fmt: skip
    session.commit()
    from tuanbox.experiments.exposure import forget

    forget(row.campaign_id)
    return experiment_out(session, row, True)
