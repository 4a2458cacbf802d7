"""Invite tasks ("invite 3 new buyers who complete an order → ¥10 coupon"): configured by
ops or a merchant (audited), settled for an inviter whenever one of their invitees' orders
is picked up or refunded.

Settling recomputes the count from the orders, so a refund takes it back by itself. Reaching
the goal grants the task's coupon (issue key `task:{task}:r{round}`); falling below it again
revokes that coupon if still unused, or, when it was used, keeps it and records so
(`kept_used`). Reaching the goal again after a revocation grants a new round. Every change
is a `task_ledger` row with a unique key. One inviter's settlements are serialised by a lock
on their user row, so concurrent pickups never grant twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.audit.services import Actor, record
from tuanbox.coupons.domain import CouponStatus, aware
from tuanbox.coupons.models import Coupon, CouponEntry
from tuanbox.coupons.services import get_template, issue_one
from tuanbox.db.base import utcnow
from tuanbox.growth.errors import InvalidGrowthConfigError, TaskNotFoundError
from tuanbox.growth.models import InviteTask, TaskEntry, TaskGrant
from tuanbox.growth.qualify import count_for

MAX_TASKS = 50  # active tasks one settlement looks at


def create_task(
    session: Session,
    actor: Actor,
    *,
    name: str,
    goal: int,
    template_id: str,
    starts_at: datetime,
    ends_at: datetime,
    merchant_id: str | None,
) -> InviteTask:
    if starts_at >= ends_at:
        raise InvalidGrowthConfigError("starts_at must come before ends_at", field="ends_at")
    if not 0 < goal <= 1000:
        raise InvalidGrowthConfigError("goal must be 1 to 1000", field="goal")
    template = get_template(session, template_id)
    if merchant_id is not None and template.merchant_id not in (None, merchant_id):
        raise InvalidGrowthConfigError(
            "the coupon template is another merchant's", field="template_id"
        )
    task = InviteTask(
        name=name,
        goal=goal,
        template_id=template_id,
        starts_at=starts_at,
        ends_at=ends_at,
        merchant_id=merchant_id,
        created_by=actor.id[:64],
    )
    session.add(task)
    session.flush()
    record(
        session,
        actor,
        "growth.task.create",
        "invite_task",
        task.id,
        after={"name": name, "goal": goal, "template_id": template_id},
    )
    return task


def set_active(
    session: Session, actor: Actor, task_id: str, active: bool, merchant_id: str | None
) -> InviteTask:
    task = session.get(InviteTask, task_id)
    if task is None or (merchant_id is not None and task.merchant_id != merchant_id):
        raise TaskNotFoundError("no such invite task")
    before = task.active
    task.active = active
    record(
        session,
        actor,
        "growth.task.update",
        "invite_task",
        task.id,
        before={"active": before},
        after={"active": active},
    )
    return task


def _ledger(session: Session, grant: TaskGrant, kind: str, count: int, now: datetime) -> None:
    session.add(
        TaskEntry(
            key=f"task:{grant.task_id}:{grant.user_id}:r{grant.round}:{kind}",
            task_id=grant.task_id,
            user_id=grant.user_id,
            kind=kind,
            coupon_id=grant.coupon_id,
            count=count,
            at=now,
        )
    )


def _grant(session: Session, task: InviteTask, user_id: str, round_: int, now: datetime) -> Coupon:
    return issue_one(
        session,
        task.template_id,
        user_id,
        f"task:{task.id}:r{round_}",
        source="rule",
        actor_id=f"task:{task.id}"[:64],
        now=now,
    )


def settle_task(session: Session, task: InviteTask, user_id: str, now: datetime) -> str | None:
    """Bring one (task, inviter) in line with the count; returns what changed, if anything."""
    count = count_for(session, user_id, since=task.starts_at, until=task.ends_at)
    grant = session.scalars(
        select(TaskGrant).where(TaskGrant.task_id == task.id, TaskGrant.user_id == user_id)
    ).one_or_none()
    reached = count >= task.goal
    if reached and grant is None:
        if not task.active or now >= aware(task.ends_at):
            return None
        coupon = _grant(session, task, user_id, 1, now)
        grant = TaskGrant(task_id=task.id, user_id=user_id, round=1, coupon_id=coupon.id)
        session.add(grant)
        session.flush()
        _ledger(session, grant, "granted", count, now)
        return "granted"
    if grant is None:
        return None
    if reached and grant.status == "revoked":
        if not task.active or now >= aware(task.ends_at):
            return None
        grant.round += 1
        grant.coupon_id = _grant(session, task, user_id, grant.round, now).id
        grant.status = "granted"
        _ledger(session, grant, "granted", count, now)
        return "granted"
    if reached and grant.status == "kept_used":
        grant.status = "granted"
        _ledger(session, grant, "requalified", count, now)
        return "requalified"
    if not reached and grant.status == "granted":
        coupon = session.scalars(
            select(Coupon).where(Coupon.id == grant.coupon_id).with_for_update()
        ).one()
        if coupon.status == CouponStatus.AVAILABLE:
            coupon.status = CouponStatus.EXPIRED
            coupon.valid_until = now
            session.add(
                CouponEntry(
                    key=f"revoke:task:{task.id}:{user_id}:r{grant.round}",
                    coupon_id=coupon.id,
                    kind="revoked",
                    actor_id=f"task:{task.id}"[:64],
                    at=now,
                )
            )
            grant.status = "revoked"
            _ledger(session, grant, "revoked", count, now)
            return "revoked"
        grant.status = "kept_used"
        _ledger(session, grant, "kept_used", count, now)
        return "kept_used"
    return None


def settle(session: Session, inviter_id: str, *, now: datetime | None = None) -> dict[str, str]:
    """Settle every task that could concern this inviter; returns task id → change."""
    now = now or utcnow()
    # One inviter at a time: two pickups of two invitees must not both grant.
    session.scalars(select(User.id).where(User.id == inviter_id).with_for_update()).one_or_none()
    granted = select(TaskGrant.task_id).where(TaskGrant.user_id == inviter_id)
    tasks = session.scalars(
        select(InviteTask)
        .where(
            or_(
                (InviteTask.active.is_(True)) & (InviteTask.starts_at <= now),
                InviteTask.id.in_(granted),
            )
        )
        .order_by(InviteTask.id)
        .limit(MAX_TASKS)
    ).all()
    changes: dict[str, str] = {}
    for task in tasks:
        change = settle_task(session, task, inviter_id, now)
        if change:
            changes[task.id] = change
    return changes


def progress(
    session: Session, user_id: str, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The shopper's view of each running task: count, goal and the reward's state."""
    now = now or utcnow()
    tasks = session.scalars(
        select(InviteTask)
        .where(InviteTask.active.is_(True), InviteTask.starts_at <= now, InviteTask.ends_at > now)
        .order_by(InviteTask.ends_at, InviteTask.id)
        .limit(MAX_TASKS)
    ).all()
    out = []
    for task in tasks:
        grant = session.scalars(
            select(TaskGrant).where(TaskGrant.task_id == task.id, TaskGrant.user_id == user_id)
        ).one_or_none()
        out.append(
            {
                "task_id": task.id,
                "name": task.name,
                "goal": task.goal,
                "count": count_for(session, user_id, since=task.starts_at, until=task.ends_at),
                "ends_at": task.ends_at,
                "reward": grant.status if grant else None,
            }
        )
    return out
