"""Report tables: daily rollups, first-purchase days, batched page views and the watermark.

Every rollup row is a pure function of the raw rows (orders, groups) of its merchant and
local day, so any row can be deleted and recomputed at any time with the same result.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tuanbox.db.base import Base, BigInt, utcnow
from tuanbox.groupbuy.models import Group
from tuanbox.orders.models import Order

# The incremental refresh reads what changed since its watermark; recomputing a day reads
# its groups by creation time (its orders through the console's (merchant_id, created_at)).
Index("ix_orders_updated_at", Order.updated_at)
Index("ix_gb_groups_updated_at", Group.updated_at)
Index("ix_gb_groups_created_at", Group.created_at)

# '' stands for "none" in key columns (regular orders have no campaign, some no station), so
# the key can be a primary key.
NONE = ""


_COUNTS_CHECK = (
    "orders >= 0 AND paid_orders >= 0 AND picked_up >= 0 AND refunded_orders >= 0"
    " AND gmv_cents >= 0 AND refund_cents >= 0 AND groups_opened >= 0"
    " AND groups_succeeded >= 0 AND groups_failed >= 0"
)


class Counts:
    """What a rollup row counts of the orders placed (and groups opened) on its day."""

    orders: Mapped[int] = mapped_column(BigInt, default=0)
    paid_orders: Mapped[int] = mapped_column(BigInt, default=0)
    gmv_cents: Mapped[int] = mapped_column(BigInt, default=0)
    picked_up: Mapped[int] = mapped_column(BigInt, default=0)
    refunded_orders: Mapped[int] = mapped_column(BigInt, default=0)
    refund_cents: Mapped[int] = mapped_column(BigInt, default=0)
    groups_opened: Mapped[int] = mapped_column(BigInt, default=0)
    groups_succeeded: Mapped[int] = mapped_column(BigInt, default=0)
    groups_failed: Mapped[int] = mapped_column(BigInt, default=0)


class DailyRollup(Counts, Base):
    """One merchant's orders created on one local day, per campaign ('' = none).

    Two tables of one grain each (campaign, station) rather than one of both: a year of the
    busiest merchant is a few thousand rows here, not a hundred thousand."""

    __tablename__ = "report_daily"
    __table_args__ = (CheckConstraint(_COUNTS_CHECK, name="counts_nonnegative"),)

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class DailyStationRollup(Counts, Base):
    """The same counts per pickup station ('' = none; groups are counted under '')."""

    __tablename__ = "report_daily_stations"
    __table_args__ = (CheckConstraint(_COUNTS_CHECK, name="counts_nonnegative"),)

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(36), primary_key=True)


class MonthlyStationRollup(Counts, Base):
    """A month's station rows and buyer rows summed (month = its first day): what the
    dashboard reads for the whole months of a long range (a year of the busiest merchant is
    a few thousand rows here, against a hundred thousand daily ones). Derived from
    `report_daily_stations` and `report_daily_buyers` whenever one of the month's days is
    recomputed; `station_days` / `buyer_days` count the daily rows summed (a station is
    listed where it had one)."""

    __tablename__ = "report_monthly_stations"
    __table_args__ = (CheckConstraint(_COUNTS_CHECK, name="counts_nonnegative"),)

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    new_buyers: Mapped[int] = mapped_column(BigInt, default=0)
    repeat_buyers: Mapped[int] = mapped_column(BigInt, default=0)
    station_days: Mapped[int] = mapped_column(BigInt, default=0)
    buyer_days: Mapped[int] = mapped_column(BigInt, default=0)


class DailyBuyers(Base):
    """Buyers (shoppers with a paid order) of one merchant on one day, new or repeat.

    Each buyer counts once per day, at the station of their first paid order that day, so
    stations add up to the day's buyers."""

    __tablename__ = "report_daily_buyers"
    __table_args__ = (
        CheckConstraint("new_buyers >= 0 AND repeat_buyers >= 0", name="counts_nonnegative"),
    )

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    station_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    new_buyers: Mapped[int] = mapped_column(BigInt, default=0)
    repeat_buyers: Mapped[int] = mapped_column(BigInt, default=0)


class BuyerFirstDay(Base):
    """The local day of a shopper's first paid order with a merchant (new vs repeat)."""

    __tablename__ = "report_buyer_first"

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    first_day: Mapped[date] = mapped_column(Date)


class CampaignViews(Base):
    """Campaign page views per local day, flushed in batches from Redis counters."""

    __tablename__ = "report_campaign_views"
    __table_args__ = (CheckConstraint("views >= 0", name="views_nonnegative"),)

    merchant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    views: Mapped[int] = mapped_column(BigInt, default=0)


class ViewBatch(Base):
    """A flushed batch of page-view counters: written with its counts, so a batch retried
    after a crash between the commit and the Redis delete is not counted twice."""

    __tablename__ = "report_view_batches"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    applied_at: Mapped[datetime] = mapped_column(default=utcnow)


class Watermark(Base):
    """How far the incremental refresh has read (the largest `updated_at` it has seen)."""

    __tablename__ = "report_watermarks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime]
