"""Coupon use cases: templates, and issuing coupons (by hand, by rule, to a list of users,
for points) exactly once per key, within each template's limits, under its row lock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.coupons.domain import Audience, CouponKind, CouponStatus, aware
from tuanbox.coupons.errors import (
    CouponExpiredError,
    CouponKeyConflictError,
    CouponLimitReachedError,
    CouponNotApplicableError,
    InvalidTemplateError,
    TemplateNotFoundError,
)
from tuanbox.coupons.models import Coupon, CouponEntry, CouponTemplate
from tuanbox.db.base import utcnow
from tuanbox.orders.models import Order
from tuanbox.points import services as points

DEFAULT_DORMANT_DAYS = 30
MAX_BATCH = 10_000  # users one issuance call may reach


def create_template(session: Session, *, created_by: str, **fields: Any) -> CouponTemplate:
    """A template after the checks its table's constraints would make, as readable errors."""
    kind = CouponKind(fields["kind"])
    if kind is CouponKind.AMOUNT_OFF and fields.get("amount_off_cents", 0) <= 0:
        raise InvalidTemplateError(
            "an amount-off coupon needs amount_off_cents > 0", field="amount_off_cents"
        )
    if kind is CouponKind.PERCENT_OFF and not 0 < fields.get("percent_off", 0) < 100:
        raise InvalidTemplateError("percent_off must be 1 to 99", field="percent_off")
    if fields["valid_from"] >= fields["valid_until"]:
        raise InvalidTemplateError("valid_from must come before valid_until", field="valid_until")
    template = CouponTemplate(created_by=created_by, **fields)
    session.add(template)
    session.flush()
    return template


def get_template(session: Session, template_id: str, *, lock: bool = False) -> CouponTemplate:
    query = select(CouponTemplate).where(CouponTemplate.id == template_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    template = session.scalars(query).one_or_none()
    if template is None:
        raise TemplateNotFoundError("coupon template not found")
    return template


def set_active(session: Session, template_id: str, active: bool) -> tuple[CouponTemplate, bool]:
    """Pause (no more coupons issued from it; those issued stay good) or resume a template;
    returns it and what `active` was before."""
    template = get_template(session, template_id, lock=True)
    before = template.active
    template.active = active
    return template, before


@dataclass
class Issued:
    """What one issuance call did: new coupons, ones an earlier call with the key made, and
    users skipped with the reason's code."""

    issued: list[Coupon] = field(default_factory=list)
    replayed: list[Coupon] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _audience_refusal(
    session: Session, template: CouponTemplate, user_id: str, now: datetime, dormant_days: int
) -> str | None:
    user = session.get(User, user_id)
    if user is None or user.role != "shopper":
        return "NOT_A_SHOPPER"
    if template.audience == Audience.ALL:
        return None
    last_paid = session.scalar(
        select(func.max(Order.paid_at)).where(Order.user_id == user_id, Order.paid_at.is_not(None))
    )
    if template.audience == Audience.NEW_USER:
        if last_paid is not None:
            return "NOT_A_NEW_USER"
        from tuanbox.growth.newuser import new_user_coupon_taken

        # One per person, as the new-user offers: another account on the same phone, device
        # or payment account already had a new-user benefit or bought.
        return "NEW_USER_TAKEN" if new_user_coupon_taken(session, user_id) else None
    if last_paid is None or aware(last_paid) > now - timedelta(days=dormant_days):
        return "NOT_DORMANT"
    return None


def _issue_locked(
    session: Session,
    template: CouponTemplate,
    user_id: str,
    issue_key: str,
    *,
    source: str,
    actor_id: str,
    now: datetime,
    dormant_days: int,
) -> Coupon | str:
    """One coupon, or the code of why not. The caller holds the template's row lock."""
    existing = session.scalars(select(Coupon).where(Coupon.issue_key == issue_key)).one_or_none()
    if existing is not None:
        if existing.template_id != template.id or existing.user_id != user_id:
            raise CouponKeyConflictError("issue key already used for another coupon", key=issue_key)
        return existing
    refusal = _audience_refusal(session, template, user_id, now, dormant_days)
    if refusal is not None:
        return refusal
    held = session.scalar(
        select(func.count()).where(Coupon.template_id == template.id, Coupon.user_id == user_id)
    )
    if (held or 0) >= template.per_user_limit:
        return "COUPON_LIMIT_REACHED"
    if template.total_limit is not None and template.issued_count >= template.total_limit:
        return "COUPON_LIMIT_REACHED"
    until = aware(template.valid_until)
    if template.valid_days is not None:
        until = min(until, now + timedelta(days=template.valid_days))
    coupon = Coupon(
        template_id=template.id,
        user_id=user_id,
        issue_key=issue_key,
        source=source,
        status=CouponStatus.AVAILABLE,
        valid_from=template.valid_from,
        valid_until=until,
        issued_at=now,
    )
    session.add(coupon)
    session.flush()
    template.issued_count += 1
    session.add(
        CouponEntry(
            key=f"issue:{issue_key}",
            coupon_id=coupon.id,
            kind="issued",
            actor_id=actor_id[:64],
            at=now,
        )
    )
    return coupon


def _open_template(session: Session, template_id: str, now: datetime) -> CouponTemplate:
    template = get_template(session, template_id, lock=True)
    if not template.active or now >= aware(template.valid_until):
        raise CouponExpiredError(
            "this coupon template is no longer issued", template_id=template.id
        )
    return template


def issue_to_users(
    session: Session,
    template: CouponTemplate | str,
    user_ids: Sequence[str],
    key: str,
    *,
    source: str = "list",
    actor_id: str = "system",
    now: datetime | None = None,
    dormant_days: int = DEFAULT_DORMANT_DAYS,
) -> Issued:
    """Issue one coupon of `template` to each user, once per (key, user) however often this
    runs: the segment push and retried jobs call it. Users over a limit or outside the
    template's audience are skipped, not failed."""
    now = now or utcnow()
    template_id = template if isinstance(template, str) else template.id
    locked = _open_template(session, template_id, now)
    result = Issued()
    for user_id in dict.fromkeys(user_ids):  # once each, in the given order
        before = session.scalars(
            select(Coupon.id).where(Coupon.issue_key == f"{key}:{user_id}")
        ).one_or_none()
        outcome = _issue_locked(
            session,
            locked,
            user_id,
            f"{key}:{user_id}",
            source=source,
            actor_id=actor_id,
            now=now,
            dormant_days=dormant_days,
        )
        if isinstance(outcome, str):
            result.skipped[user_id] = outcome
        elif before is not None:
            result.replayed.append(outcome)
        else:
            result.issued.append(outcome)
    return result


def issue_one(
    session: Session,
    template_id: str,
    user_id: str,
    key: str,
    *,
    source: str = "manual",
    actor_id: str = "system",
    now: datetime | None = None,
    dormant_days: int = DEFAULT_DORMANT_DAYS,
) -> Coupon:
    """One coupon to one user, or an error saying why not (limit, audience)."""
    result = issue_to_users(
        session,
        template_id,
        [user_id],
        key,
        source=source,
        actor_id=actor_id,
        now=now,
        dormant_days=dormant_days,
    )
    if result.skipped:
        code = result.skipped[user_id]
        if code == "COUPON_LIMIT_REACHED":
            raise CouponLimitReachedError("this shopper already has as many as allowed")
        raise CouponNotApplicableError(f"this coupon is not for this shopper ({code})", reason=code)
    return (result.issued or result.replayed)[0]


def audience_users(
    session: Session, template: CouponTemplate, *, now: datetime, dormant_days: int
) -> list[str]:
    """The shoppers a template's rule reaches: new users, or dormant ones (wake-up)."""
    if template.audience == Audience.ALL:
        raise InvalidTemplateError(
            "a coupon for everyone is issued to a list, not by rule", field="rule"
        )
    last_paid = (
        select(Order.user_id, func.max(Order.paid_at).label("last"))
        .where(Order.paid_at.is_not(None))
        .group_by(Order.user_id)
        .subquery()
    )
    query = select(User.id).outerjoin(last_paid, last_paid.c.user_id == User.id)
    query = query.where(User.role == "shopper")
    if template.audience == Audience.NEW_USER:
        query = query.where(last_paid.c.last.is_(None))
    else:
        query = query.where(last_paid.c.last < now - timedelta(days=dormant_days))
    return list(session.scalars(query.order_by(User.id).limit(MAX_BATCH)))


def issue_by_rule(
    session: Session,
    template_id: str,
    key: str,
    *,
    actor_id: str = "system",
    now: datetime | None = None,
    dormant_days: int = DEFAULT_DORMANT_DAYS,
) -> Issued:
    now = now or utcnow()
    template = get_template(session, template_id)
    users = audience_users(session, template, now=now, dormant_days=dormant_days)
    return issue_to_users(
        session,
        template_id,
        users,
        key,
        source="rule",
        actor_id=actor_id,
        now=now,
        dormant_days=dormant_days,
    )


def redeem_points(
    session: Session, user_id: str, template_id: str, key: str, *, now: datetime | None = None
) -> Coupon:
    """Buy a coupon with points: both ledgers change in this transaction, once per key."""
    now = now or utcnow()
    template = get_template(session, template_id)
    if template.points_cost is None:
        raise CouponNotApplicableError("this coupon is not offered for points")
    coupon = issue_one(
        session, template_id, user_id, f"points:{key}", source="points", actor_id=user_id, now=now
    )
    points.post(
        session,
        user_id,
        f"redeem:{coupon.id}",
        "redeem",
        -template.points_cost,
        note=f"coupon {template.name}"[:200],
    )
    return coupon


def wallet(session: Session, user_id: str) -> list[tuple[Coupon, CouponTemplate]]:
    rows = session.execute(
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.user_id == user_id)
        .order_by(Coupon.status, Coupon.valid_until, Coupon.id)
    ).all()
    return [(c, t) for c, t in rows]
