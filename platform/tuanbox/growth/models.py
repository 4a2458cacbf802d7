"""Growth tables: referral bindings, leaderboard awards, invite tasks and their grants, and
new-user offer claims (one per phone, device and payment account, by unique keys)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, TimestampMixin, utcnow


class ReferralBinding(Base):
    """A shopper's one inviter, platform-wide: the first touch wins (the primary key), and
    neither self-referral nor a loop (A→B→…→A) is ever written (the service walks the chain
    under a lock; the check refuses the shortest loop whatever path writes)."""

    __tablename__ = "referral_bindings"
    __table_args__ = (CheckConstraint("inviter_id <> invitee_id", name="not_self"),)

    invitee_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), primary_key=True
    )
    inviter_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    # The campaign whose share poster or link made the touch (None: a plain invite link).
    campaign_id: Mapped[str | None] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(16))  # poster | link | group
    bound_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeaderboardReward(TimestampMixin, Base):
    """What the top places of a period kind get: ops set the coupon template (a free order)."""

    __tablename__ = "leaderboard_rewards"
    __table_args__ = (
        CheckConstraint("period_kind IN ('week', 'month')", name="kind_known"),
        CheckConstraint("top_n > 0 AND top_n <= 100", name="top_range"),
    )

    period_kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    template_id: Mapped[str] = mapped_column(ForeignKey("coupon_templates.id", ondelete="RESTRICT"))
    top_n: Mapped[int] = mapped_column(default=10)
    active: Mapped[bool] = mapped_column(default=True)
    updated_by: Mapped[str] = mapped_column(String(64))


class LeaderboardAward(Base):
    """One place of one ended period's invite leaderboard: the standings are written once
    (unique period + rank, period + user), then each reward is granted once (its coupon's
    issue key is `lb:{period}:{user}`), so a rerun or a crash between steps finishes the job
    without minting twice."""

    __tablename__ = "leaderboard_awards"
    __table_args__ = (
        UniqueConstraint("period", "rank"),
        UniqueConstraint("period", "user_id"),
        CheckConstraint("status IN ('pending', 'granted', 'skipped')", name="status_known"),
        CheckConstraint("rank > 0 AND invites > 0", name="positive"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    period: Mapped[str] = mapped_column(String(16))  # week:2026-W49 | month:2026-12
    rank: Mapped[int]
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    invites: Mapped[int] = mapped_column(BigInt)
    template_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    coupon_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_at: Mapped[datetime | None]


class InviteTask(TimestampMixin, Base):
    """ "Invite N new buyers who complete an order → a coupon"; set up by ops or a merchant."""

    __tablename__ = "invite_tasks"
    __table_args__ = (
        CheckConstraint("goal > 0 AND goal <= 1000", name="goal_range"),
        CheckConstraint("starts_at < ends_at", name="window_order"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str | None] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    goal: Mapped[int]
    template_id: Mapped[str] = mapped_column(ForeignKey("coupon_templates.id", ondelete="RESTRICT"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(64))


class TaskGrant(Base):
    """A shopper's reward of one task. `round` grows when a refund took a granted reward back
    and the shopper reached the goal again (each round's coupon has its own issue key)."""

    __tablename__ = "task_grants"
    __table_args__ = (
        UniqueConstraint("task_id", "user_id"),
        CheckConstraint("status IN ('granted', 'revoked', 'kept_used')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("invite_tasks.id", ondelete="RESTRICT"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    round: Mapped[int] = mapped_column(default=1)
    status: Mapped[str] = mapped_column(String(10), default="granted")
    coupon_id: Mapped[str] = mapped_column(String(36))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TaskEntry(Base):
    """The task rewards' ledger: granted, revoked (unused coupon taken back) or kept_used (the
    coupon was already used when a refund took the count below the goal); one row per key."""

    __tablename__ = "task_ledger"

    id: Mapped[int] = mapped_column(BigInt, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    task_id: Mapped[str] = mapped_column(String(36), index=True)
    user_id: Mapped[str] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(10))
    coupon_id: Mapped[str] = mapped_column(String(36))
    count: Mapped[int]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class NewUserOffer(TimestampMixin, Base):
    """ "新人专享 ¥1 购": a SKU at a price for a person's first time, once per person."""

    __tablename__ = "new_user_offers"
    __table_args__ = (CheckConstraint("price_cents > 0", name="price_positive"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    sku_id: Mapped[str] = mapped_column(ForeignKey("skus.id", ondelete="RESTRICT"))
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(BigInt)
    active: Mapped[bool] = mapped_column(default=True)
    created_by: Mapped[str] = mapped_column(String(64))


class NewUserClaim(Base):
    """One claim of the new-user offers. A person is an account, a phone, a device and a
    payment account: each has its own unique key (blind indexes, never in clear), so two
    accounts on one device, or one phone re-registered, get one offer between them whatever
    races. The payer is known once the shopper pays and is bound then."""

    __tablename__ = "new_user_claims"
    __table_args__ = (
        CheckConstraint("status IN ('claimed', 'released')", name="status_known"),
        Index("ix_new_user_claims_offer_id", "offer_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    offer_id: Mapped[str] = mapped_column(ForeignKey("new_user_offers.id", ondelete="RESTRICT"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), unique=True)
    phone_key: Mapped[str] = mapped_column(String(64), unique=True)
    device_key: Mapped[str] = mapped_column(String(64), unique=True)
    payer_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    order_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    status: Mapped[str] = mapped_column(String(10), default="claimed")
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
