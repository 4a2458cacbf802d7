"""Experiments: create and stop, the running experiment of a campaign, conversions, results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.db.base import utcnow
from tuanbox.errors import ConflictError, InvalidInputError, NotFoundError
from tuanbox.experiments.domain import ZTest, assign, capped_price, check_arms, two_proportion
from tuanbox.experiments.models import Experiment, ExperimentConversion, ExperimentExposure
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.orders.models import Order


def create(
    session: Session,
    merchant_id: str,
    *,
    campaign_id: str,
    name: str,
    field: str,
    arms: list[dict[str, Any]],
    min_sample: int,
) -> Experiment:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None or campaign.merchant_id != merchant_id:
        raise NotFoundError("no such campaign")
    if not 1 <= len(name.strip()) <= 80:
        raise InvalidInputError("name must be 1 to 80 characters", field="name")
    if not 1 <= min_sample <= 10_000_000:
        raise InvalidInputError("min_sample must be 1 to 10000000", field="min_sample")
    try:
        stored = check_arms(field, arms)
    except ValueError as exc:
        raise InvalidInputError(str(exc), field="arms") from exc
    if running(session, campaign_id) is not None:
        raise ConflictError("the campaign already runs an experiment")
    row = Experiment(
        merchant_id=merchant_id,
        campaign_id=campaign_id,
        name=name.strip(),
        field=field,
        arms=stored,
        min_sample=min_sample,
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, merchant_id: str, experiment_id: str) -> Experiment:
    row = session.get(Experiment, experiment_id)
    if row is None or row.merchant_id != merchant_id:
        raise NotFoundError("no such experiment")
    return row


def stop(session: Session, merchant_id: str, experiment_id: str) -> Experiment:
    row = get(session, merchant_id, experiment_id)
    if row.status == "running":
        row.status, row.stopped_at = "stopped", utcnow()
    return row


def running(session: Session, campaign_id: str) -> Experiment | None:
    return session.scalars(
        select(Experiment).where(
            Experiment.campaign_id == campaign_id, Experiment.status == "running"
        )
    ).first()


def price_for(session: Session, campaign_id: str, user_id: str, price_cents: int) -> int:
    """The unit price a joining shopper pays under a running price experiment (the same
    assignment the campaign page used to show it); the campaign's price otherwise."""
    row = session.scalars(
        select(Experiment).where(
            Experiment.campaign_id == campaign_id,
            Experiment.status == "running",
            Experiment.field == "price",
        )
    ).first()
    if row is None:
        return price_cents
    arm = assign(row.id, user_id, row.arms)
    value = next(str(a["value"]) for a in row.arms if a["key"] == arm)
    return capped_price(price_cents, "price", value)


def listing(session: Session, merchant_id: str) -> list[Experiment]:
    return list(
        session.scalars(
            select(Experiment)
            .where(Experiment.merchant_id == merchant_id)
            .order_by(Experiment.started_at.desc())
            .limit(100)
        )
    )


def record_conversion(session: Session, order: Order) -> None:
    """An order paid on a campaign under experiment converts its shopper once (order hook)."""
    if not order.group_id:
        return
    campaign_id = session.scalar(select(Group.campaign_id).where(Group.id == order.group_id))
    if campaign_id is None:
        return
    experiment = running(session, campaign_id)
    if experiment is None:
        return
    if session.get(ExperimentConversion, (experiment.id, order.user_id)) is not None:
        return
    arm = assign(experiment.id, order.user_id, experiment.arms)
    session.add(
        ExperimentConversion(
            experiment_id=experiment.id, user_id=order.user_id, arm=arm, order_id=order.id
        )
    )
    session.flush()


@dataclass(frozen=True)
class ArmResult:
    key: str
    value: str
    weight: int
    exposures: int
    clicks: int
    conversions: int
    ctr: float | None
    conversion_rate: float | None
    test: ZTest | None  # against the first arm (control)
    under_sample: bool


def results(
    session: Session, experiment: Experiment, now: datetime | None = None
) -> list[ArmResult]:
    """Per arm: exposures (flushed), clicks (shoppers who started an order on the campaign
    since the start, by their arm), conversions (paid), rates and the test against control."""
    exposures = dict(
        session.execute(
            select(ExperimentExposure.arm, ExperimentExposure.exposures).where(
                ExperimentExposure.experiment_id == experiment.id
            )
        ).all()
    )
    conversions = dict(
        session.execute(
            select(ExperimentConversion.arm, func.count())
            .where(ExperimentConversion.experiment_id == experiment.id)
            .group_by(ExperimentConversion.arm)
        ).all()
    )
    until = experiment.stopped_at or now or utcnow()
    starters = session.scalars(
        select(Order.user_id)
        .join(Group, Group.id == Order.group_id)
        .where(
            Group.campaign_id == experiment.campaign_id,
            Order.created_at >= experiment.started_at,
            Order.created_at <= until,
        )
        .distinct()
    )
    clicks: dict[str, int] = {}
    for user_id in starters:  # bounded by the campaign's buyers, not its viewers
        arm = assign(experiment.id, user_id, experiment.arms)
        clicks[arm] = clicks.get(arm, 0) + 1
    control = experiment.arms[0]["key"]
    n0, c0 = exposures.get(control, 0), conversions.get(control, 0)
    out = []
    for arm in experiment.arms:
        key = arm["key"]
        n, c, k = exposures.get(key, 0), conversions.get(key, 0), clicks.get(key, 0)
        out.append(
            ArmResult(
                key=key,
                value=arm["value"],
                weight=arm["weight"],
                exposures=n,
                clicks=k,
                conversions=c,
                ctr=k / n if n else None,
                conversion_rate=c / n if n else None,
                test=None if key == control else two_proportion(c0, n0, c, n),
                under_sample=n < experiment.min_sample,
            )
        )
    return out
