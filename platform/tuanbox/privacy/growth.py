"""The shopper's growth data in their export, and what erasing the account does to it.

Export: their coupons (each with its ledger), points (balance, debt, ledger), referrals (who
invited them and whom they invited, each other person shown only as a masked name), invite
task grants and leaderboard places, new-user offer claims, membership (status, terms,
ledger), tags and RFM scores merchants hold on them, the pushes they were sent, and the
experiment arms their orders were counted in.

Erasure keeps every money ledger, pseudonymised: the rows stay keyed to the account id, and
the account row is a tombstone with no personal field, as for orders and payments. So
coupon, points, membership, task and leaderboard ledgers and referral bindings stay (the
inviter's rewards were counted from them, and both ends are bare ids). What is open is closed
on the books: unused coupons are voided (ledger `erased`) and a points balance is forfeited
(ledger `forfeit`), both once. Profiling goes: manual and computed tags and RFM scores are
deleted (and the RFM job skips erased accounts), and a push's link to its deleted notice is
cleared. A new-user claim keeps its phone, device and payment-account blind indexes (keyed
HMACs, no phone or device id in clear): they are what makes the offer one per person, and
dropping them would let the same person claim again under a new account.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tuanbox.accounts.models import User
from tuanbox.accounts.services import display_name_of
from tuanbox.catalog.models import Merchant
from tuanbox.coupons.domain import CouponStatus
from tuanbox.coupons.models import Coupon, CouponEntry, CouponTemplate
from tuanbox.experiments.models import Experiment, ExperimentConversion
from tuanbox.growth.models import (
    LeaderboardAward,
    NewUserClaim,
    NewUserOffer,
    ReferralBinding,
    TaskGrant,
)
from tuanbox.membership.models import Membership, MembershipEntry, MembershipTerm
from tuanbox.points import services as points
from tuanbox.points.models import PointsEntry
from tuanbox.segments.models import Push, PushRecipient, RfmScore, UserTag
from tuanbox.settings import Settings


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _masked(settings: Settings, session: Session, user_id: str) -> str:
    """Another person, as the leaderboard shows them: a first character only."""
    user = session.get(User, user_id)
    name = display_name_of(settings, user) if user is not None else None
    return (name or "?")[:1] + "**"


def _coupons(session: Session, user_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Coupon, CouponTemplate)
        .join(CouponTemplate, CouponTemplate.id == Coupon.template_id)
        .where(Coupon.user_id == user_id)
        .order_by(Coupon.issued_at, Coupon.id)
    ).all()
    ids = [coupon.id for coupon, _ in rows]
    ledger: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for e in session.scalars(
        select(CouponEntry).where(CouponEntry.coupon_id.in_(ids)).order_by(CouponEntry.id)
    ):
        ledger[e.coupon_id].append(
            {"kind": e.kind, "order_id": e.order_id, "cents": e.cents, "at": _at(e.at)}
        )
    return [
        {
            "id": c.id,
            "name": t.name,
            "kind": t.kind,
            "amount_off_cents": t.amount_off_cents,
            "percent_off": t.percent_off,
            "max_off_cents": t.max_off_cents,
            "threshold_cents": t.threshold_cents,
            "audience": t.audience,
            "source": c.source,
            "status": c.status,
            "order_id": c.order_id,
            "valid_from": _at(c.valid_from),
            "valid_until": _at(c.valid_until),
            "issued_at": _at(c.issued_at),
            "ledger": ledger[c.id],
        }
        for c, t in rows
    ]


def _points(session: Session, user_id: str) -> dict[str, Any]:
    balance, debt = points.balance_of(session, user_id)
    entries = session.scalars(
        select(PointsEntry).where(PointsEntry.user_id == user_id).order_by(PointsEntry.id)
    )
    return {
        "balance": balance,
        "debt": debt,
        "ledger": [
            {"kind": e.kind, "delta": e.delta, "debt_delta": e.debt_delta,
             "order_id": e.order_id, "note": e.note, "at": _at(e.at)}
            for e in entries
        ],
    }  # fmt: skip


def _referrals(session: Session, settings: Settings, user_id: str) -> dict[str, Any]:
    from tuanbox.growth.qualify import qualifying

    mine = session.get(ReferralBinding, user_id)
    counted = set(session.scalars(select(qualifying(inviter_id=user_id).subquery().c.invitee_id)))
    invited = session.scalars(
        select(ReferralBinding)
        .where(ReferralBinding.inviter_id == user_id)
        .order_by(ReferralBinding.bound_at, ReferralBinding.invitee_id)
    ).all()
    claims = session.execute(
        select(NewUserClaim, NewUserOffer.name)
        .join(NewUserOffer, NewUserOffer.id == NewUserClaim.offer_id)
        .where(NewUserClaim.user_id == user_id)
    ).all()
    return {
        "invited_by": None
        if mine is None
        else {
            "inviter": _masked(settings, session, mine.inviter_id),
            "source": mine.source,
            "campaign_id": mine.campaign_id,
            "bound_at": _at(mine.bound_at),
        },
        "invited": [
            {
                "invitee": _masked(settings, session, b.invitee_id),
                "source": b.source,
                "campaign_id": b.campaign_id,
                "bound_at": _at(b.bound_at),
                "counted": b.invitee_id in counted,
            }
            for b in invited
        ],
        "task_rewards": [
            {"task_id": g.task_id, "round": g.round, "status": g.status, "coupon_id": g.coupon_id}
            for g in session.scalars(
                select(TaskGrant).where(TaskGrant.user_id == user_id).order_by(TaskGrant.id)
            )
        ],
        "leaderboard_places": [
            {
                "period": a.period,
                "invites": a.invites,
                "status": a.status,
                "coupon_id": a.coupon_id,
                "decided_at": _at(a.decided_at),
            }
            for a in session.scalars(
                select(LeaderboardAward)
                .where(LeaderboardAward.user_id == user_id)
                .order_by(LeaderboardAward.id)
            )
        ],
        "new_user_offers": [
            {
                "offer": name,
                "status": c.status,
                "order_id": c.order_id,
                "claimed_at": _at(c.claimed_at),
            }
            for c, name in claims
        ],
    }


def _membership(session: Session, user_id: str) -> dict[str, Any]:
    row = session.get(Membership, user_id)
    terms = session.scalars(
        select(MembershipTerm)
        .where(MembershipTerm.user_id == user_id)
        .order_by(MembershipTerm.created_at, MembershipTerm.id)
    )
    entries = session.scalars(
        select(MembershipEntry)
        .where(MembershipEntry.user_id == user_id)
        .order_by(MembershipEntry.id)
    )
    return {
        "starts_at": _at(row.starts_at) if row else None,
        "ends_at": _at(row.ends_at) if row else None,
        "terms": [
            {"id": t.id, "status": t.status, "amount_cents": t.amount_cents, "days": t.days,
             "starts_at": _at(t.starts_at), "ends_at": _at(t.ends_at),
             "refunded_cents": t.refunded_cents}
            for t in terms
        ],
        "ledger": [
            {"kind": e.kind, "term_id": e.term_id, "cents": e.cents, "days": e.days,
             "at": _at(e.at)}
            for e in entries
        ],
    }  # fmt: skip


def _segments(session: Session, user_id: str) -> dict[str, Any]:
    tags = session.execute(
        select(UserTag, Merchant.name)
        .outerjoin(Merchant, Merchant.id == UserTag.merchant_id)
        .where(UserTag.user_id == user_id)
        .order_by(UserTag.merchant_id, UserTag.tag)
    ).all()
    scores = session.execute(
        select(RfmScore, Merchant.name)
        .outerjoin(Merchant, Merchant.id == RfmScore.scope)
        .where(RfmScore.user_id == user_id)
        .order_by(RfmScore.scope)
    ).all()
    pushes = session.execute(
        select(PushRecipient, Push)
        .join(Push, Push.id == PushRecipient.push_id)
        .where(PushRecipient.user_id == user_id)
        .order_by(PushRecipient.sent_at, Push.id)
    ).all()
    return {
        "tags": [
            {"merchant": name, "tag": t.tag, "source": t.source, "created_at": _at(t.created_at)}
            for t, name in tags
        ],
        "rfm_scores": [
            {
                "merchant": name,
                "scope": s.scope,
                "recency": s.r,
                "frequency": s.f,
                "monetary": s.m,
                "orders": s.frequency,
                "spent_cents": s.monetary_cents,
                "last_paid_at": _at(s.last_paid_at),
                "computed_at": _at(s.computed_at),
            }
            for s, name in scores
        ],
        "pushes": [
            {"kind": p.kind, "message": p.message, "status": r.status, "sent_at": _at(r.sent_at)}
            for r, p in pushes
        ],
    }


def _experiments(session: Session, user_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ExperimentConversion, Experiment)
        .join(Experiment, Experiment.id == ExperimentConversion.experiment_id)
        .where(ExperimentConversion.user_id == user_id)
        .order_by(ExperimentConversion.converted_at, Experiment.id)
    ).all()
    return [
        {"experiment": e.name, "field": e.field, "arm": c.arm,
         "shown": next((a.get("value") for a in e.arms if a.get("key") == c.arm), None),
         "order_id": c.order_id, "converted_at": _at(c.converted_at)}
        for c, e in rows
    ]  # fmt: skip


def export_sections(session: Session, settings: Settings, user_id: str) -> dict[str, Any]:
    return {
        "coupons": _coupons(session, user_id),
        "points": _points(session, user_id),
        "referrals": _referrals(session, settings, user_id),
        "membership": _membership(session, user_id),
        "segments": _segments(session, user_id),
        "experiments": _experiments(session, user_id),
    }


def erase(session: Session, user_id: str, now: datetime) -> dict[str, int]:
    """Close what is open on the books and drop the profiling (see the module docstring);
    row counts by what was done. In the caller's transaction, after its orders are settled."""
    counts: dict[str, int] = {}
    open_coupons = session.scalars(
        select(Coupon)
        .where(Coupon.user_id == user_id, Coupon.status == CouponStatus.AVAILABLE)
        .order_by(Coupon.id)
        .with_for_update()
    ).all()
    for coupon in open_coupons:
        coupon.status = CouponStatus.EXPIRED
        session.add(
            CouponEntry(
                key=f"erased:{coupon.id}", coupon_id=coupon.id, kind="erased",
                actor_id="privacy.erase", at=now,
            )
        )  # fmt: skip
    counts["coupons_voided"] = len(open_coupons)
    balance, _debt = points.balance_of(session, user_id)
    if balance > 0:
        points.post(session, user_id, f"forfeit:{user_id}", "forfeit", -balance,
                    note="account erased")  # fmt: skip
    counts["points_forfeited"] = balance

    def run(name: str, statement: Any) -> None:
        counts[name] = int(session.execute(statement).rowcount)  # type: ignore[attr-defined]

    run("user_tags", delete(UserTag).where(UserTag.user_id == user_id))
    run("rfm_scores", delete(RfmScore).where(RfmScore.user_id == user_id))
    run(
        "push_notice_links",
        update(PushRecipient)
        .where(PushRecipient.user_id == user_id, PushRecipient.notification_id.is_not(None))
        .values(notification_id=None),
    )
    session.flush()
    return counts
