"""Group-buy tables: campaigns, groups (with the seat counter), members and per-user quotas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.accounts.models import new_id
from tuanbox.db.base import Base, BigInt, TimestampMixin


class Campaign(TimestampMixin, Base):
    __tablename__ = "gb_campaigns"
    __table_args__ = (
        CheckConstraint("kind IN ('fixed', 'tiered')", name="kind_known"),
        CheckConstraint("min_size >= 1 AND max_size >= min_size", name="sizes_valid"),
        CheckConstraint("per_user_limit >= 1", name="limit_positive"),
        CheckConstraint("ends_at > starts_at", name="window_valid"),
        # The campaign's pool can never hand out more than was set aside for it.
        CheckConstraint(
            "stock_cap IS NULL OR (stock_remaining >= 0 AND stock_remaining <= stock_cap)",
            name="pool_within",
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    merchant_id: Mapped[str] = mapped_column(
        ForeignKey("merchants.id", ondelete="RESTRICT"), index=True
    )
    sku_id: Mapped[str] = mapped_column(ForeignKey("skus.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))
    # [[members, price_cents], ...] ascending; a fixed campaign has exactly one tier.
    tiers: Mapped[list[Any]] = mapped_column(JSON)
    min_size: Mapped[int]
    max_size: Mapped[int]
    leader_price_cents: Mapped[int | None] = mapped_column(BigInt)
    per_user_limit: Mapped[int] = mapped_column(default=1)
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    group_ttl_s: Mapped[int] = mapped_column(default=24 * 3600)
    # Station ids belong to the fulfilment feature; stored as strings, validated there.
    station_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    presale: Mapped[bool] = mapped_column(default=False)
    lot_code: Mapped[str | None] = mapped_column(String(20))
    created_by: Mapped[str] = mapped_column(String(36))
    # Set while staff have paused the campaign (the console): no group opens or joins and
    # the shop lists it no more; clearing it resumes. Group deadlines run on meanwhile.
    paused_at: Mapped[datetime | None]
    # Stock set aside for the campaign when it is created (reserved on the SKU once); NULL
    # for a campaign that reserves from the SKU at each join. Groups draw their units from
    # `stock_remaining`; `stock_closed_at` is set when the ended campaign gave back the rest.
    stock_cap: Mapped[int | None] = mapped_column(BigInt)
    stock_remaining: Mapped[int | None] = mapped_column(BigInt)
    stock_closed_at: Mapped[datetime | None]


class Group(TimestampMixin, Base):
    __tablename__ = "gb_groups"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'filled', 'confirmed', 'failed')", name="status_known"),
        # The database itself refuses overfill, whatever code path writes the counter.
        CheckConstraint("seats_taken >= 0 AND seats_taken <= max_size", name="seats_within"),
        CheckConstraint("paid_count >= 0 AND paid_count <= seats_taken", name="paid_within"),
        # Units the group holds from its campaign's pool: a join can never take more.
        CheckConstraint("units_taken >= 0 AND units_taken <= units_held", name="units_within"),
        # The deadline scan reads open/filled groups, earliest deadline first.
        Index("ix_gb_groups_status_deadline", "status", "deadline_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("gb_campaigns.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default="open")
    leader_user_id: Mapped[str | None] = mapped_column(String(36))
    seats_taken: Mapped[int] = mapped_column(default=0)
    paid_count: Mapped[int] = mapped_column(default=0)
    # Copied from the campaign so the seat UPDATE needs no join.
    min_size: Mapped[int]
    max_size: Mapped[int]
    join_seq: Mapped[int] = mapped_column(BigInt, default=0)
    deadline_at: Mapped[datetime]
    reminder_sent_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    final_unit_price_cents: Mapped[int | None] = mapped_column(BigInt)
    # A capped campaign's group draws a chunk of units from the campaign's pool when it
    # opens (and more if a join needs it), so a join touches only its group row. At close
    # the unused units go back to the pool and `units_held` drops to `units_taken`.
    units_held: Mapped[int] = mapped_column(BigInt, default=0, server_default="0")
    units_taken: Mapped[int] = mapped_column(BigInt, default=0, server_default="0")


class Member(Base):
    """A seat held by one shopper; removed when the shopper leaves or the order lapses."""

    __tablename__ = "gb_members"
    __table_args__ = (UniqueConstraint("group_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(
        ForeignKey("gb_groups.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    order_id: Mapped[str | None] = mapped_column(
        ForeignKey("orders.id", ondelete="RESTRICT"), unique=True
    )
    qty: Mapped[int] = mapped_column(BigInt)
    joined_seq: Mapped[int] = mapped_column(BigInt)
    paid: Mapped[bool] = mapped_column(default=False)
    joined_at: Mapped[datetime]


class UserQuota(Base):
    """Units a shopper holds in a campaign, bumped by a guarded UPDATE (per-user limit)."""

    __tablename__ = "gb_user_quotas"
    __table_args__ = (CheckConstraint("qty >= 0", name="qty_nonnegative"),)

    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("gb_campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    qty: Mapped[int] = mapped_column(BigInt, default=0)
