"""Group-buy use cases: create a campaign, open or join a group (atomic seats), leave, view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from tuanbox.audit.services import Actor
from tuanbox.errors import NotFoundError, PermissionDeniedError
from tuanbox.groupbuy import pool
from tuanbox.groupbuy.domain import (
    AlreadyMemberError,
    CampaignNotActiveError,
    GroupClosedError,
    GroupFullError,
    GroupStatus,
    InvalidCampaignError,
    Progress,
    UnknownStationError,
    UserLimitExceededError,
    progress,
)
from tuanbox.groupbuy.models import Campaign, Group, Member, UserQuota
from tuanbox.groupbuy.spec import CampaignSpec, tiers_from_json, tiers_to_json
from tuanbox.membership.pricing import NO_FEE, DeliveryTerms, price_order

if TYPE_CHECKING:
    from tuanbox.orders.models import Order


def as_utc(value: datetime) -> datetime:
    """SQLite hands datetimes back naive; every value we store is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def insert_for(session: Session) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT DO NOTHING (PostgreSQL and SQLite)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def create_campaign(
    session: Session, *, merchant_id: str, actor_id: str, spec: CampaignSpec
) -> Campaign:
    from tuanbox.catalog.models import Product, Sku
    from tuanbox.lockers.services import unknown_stations

    schedule = spec.schedule()
    sku = session.get(Sku, spec.sku_id)
    product = session.get(Product, sku.product_id) if sku is not None else None
    if sku is None or product is None or product.merchant_id != merchant_id:
        raise InvalidCampaignError(f"SKU {spec.sku_id} is not one of merchant {merchant_id}'s")
    unknown = unknown_stations(session, spec.station_ids)
    if unknown:
        raise UnknownStationError(
            f"no such station: {', '.join(unknown)}", unknown_station_ids=unknown
        )
    campaign = Campaign(
        merchant_id=merchant_id,
        sku_id=spec.sku_id,
        title=spec.title,
        kind=spec.kind.value,
        tiers=tiers_to_json(schedule),
        min_size=schedule.min_size,
        max_size=spec.max_size,
        leader_price_cents=spec.leader_price_cents,
        per_user_limit=spec.per_user_limit,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        group_ttl_s=spec.group_ttl_s,
        station_ids=list(dict.fromkeys(spec.station_ids)),
        presale=spec.presale,
        lot_code=spec.lot_code,
        created_by=actor_id,
    )
    if spec.stock_cap is not None:
        # Set aside once, now: joins then draw from the campaign, never from the SKU row.
        pool.set_aside(session, campaign, spec.stock_cap)
    session.add(campaign)
    session.flush()
    return campaign


def get_campaign(session: Session, campaign_id: str) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"campaign {campaign_id} not found")
    return campaign


def get_group(session: Session, group_id: str) -> Group:
    group = session.get(Group, group_id)
    if group is None:
        raise NotFoundError(f"group {group_id} not found")
    return group


@dataclass(frozen=True)
class Joined:
    """`GroupJoined`: the seat, its order and the price charged."""

    group: Group
    member: Member
    order_id: str
    unit_price_cents: int
    # Kept here so the answer is built without reading them again (the session's identity
    # map holds objects weakly: once the use case returns, they would be loaded anew).
    campaign: Campaign | None = None
    order: Order | None = None


def open_group(
    session: Session,
    *,
    campaign_id: str,
    user_id: str,
    qty: int = 1,
    station_id: str | None = None,
    now: datetime,
    pay_timeout_s: int | None = None,
    delivery: DeliveryTerms = NO_FEE,
) -> Joined:
    """`OpenGroup`: the opener becomes the leader and takes the first seat."""
    campaign = get_campaign(session, campaign_id)
    _check_window(campaign, now)
    group = Group(
        campaign_id=campaign.id,
        status=GroupStatus.OPEN.value,
        leader_user_id=user_id,
        min_size=campaign.min_size,
        max_size=campaign.max_size,
        # A group never outlives its campaign: shoppers were promised its window.
        deadline_at=min(now + timedelta(seconds=campaign.group_ttl_s), as_utc(campaign.ends_at)),
    )
    if campaign.stock_cap is not None:
        if qty < 1 or qty > campaign.per_user_limit:
            raise UserLimitExceededError(
                f"between 1 and {campaign.per_user_limit} units per shopper"
            )
        # A chunk for the whole group (the leader's units and one per other seat), drawn
        # once: its joins then take units from their group row only.
        group.units_held = pool.draw(
            session, campaign.id, want=qty + campaign.max_size - 1, need=qty
        )
    session.add(group)
    session.flush()
    joined = _take_seat(
        session,
        campaign,
        group,
        user_id=user_id,
        qty=qty,
        station_id=station_id,
        now=now,
        pay_timeout_s=pay_timeout_s,
        delivery=delivery,
    )
    # Stream join writes: its seats are in Redis once this commits (no DB hop at a first join).
    from tuanbox.groupbuy.seats import hold_after_commit

    hold_after_commit(session, group)
    return joined


def join_group(
    session: Session,
    *,
    group_id: str,
    user_id: str,
    qty: int = 1,
    station_id: str | None = None,
    now: datetime,
    pay_timeout_s: int | None = None,
    delivery: DeliveryTerms = NO_FEE,
) -> Joined:
    """`JoinGroup`: take one seat atomically, then create the member's order."""
    group = get_group(session, group_id)
    campaign = get_campaign(session, group.campaign_id)
    _check_window(campaign, now)
    if group.status != GroupStatus.OPEN or as_utc(group.deadline_at) <= now:
        raise GroupClosedError(f"group {group_id} is no longer open")
    existing = session.scalar(
        select(Member.id).where(Member.group_id == group_id, Member.user_id == user_id)
    )
    if existing is not None:
        raise AlreadyMemberError("you are already in this group")
    if group.seats_taken >= group.max_size:
        # A cheap early answer from what we read; the guarded UPDATE below decides for real.
        raise GroupFullError(f"group {group_id} has no seat left")
    return _take_seat(
        session,
        campaign,
        group,
        user_id=user_id,
        qty=qty,
        station_id=station_id,
        now=now,
        pay_timeout_s=pay_timeout_s,
        delivery=delivery,
    )


def _check_window(campaign: Campaign, now: datetime) -> None:
    if not as_utc(campaign.starts_at) <= now < as_utc(campaign.ends_at):
        raise CampaignNotActiveError(f"campaign {campaign.id} is not running now")
    if campaign.paused_at is not None:
        raise CampaignNotActiveError(f"campaign {campaign.id} is paused by the merchant")


def _take_seat(
    session: Session,
    campaign: Campaign,
    group: Group,
    *,
    user_id: str,
    qty: int,
    station_id: str | None,
    now: datetime,
    pay_timeout_s: int | None = None,
    delivery: DeliveryTerms = NO_FEE,
) -> Joined:
    from tuanbox.catalog.models import Sku
    from tuanbox.orders.services import DEFAULT_PAY_TIMEOUT_S, create_order

    if qty < 1 or qty > campaign.per_user_limit:
        raise UserLimitExceededError(f"between 1 and {campaign.per_user_limit} units per shopper")
    if station_id is not None and campaign.station_ids and station_id not in campaign.station_ids:
        raise InvalidCampaignError(f"station {station_id} is not served by this campaign")
    capped = campaign.stock_cap is not None
    if not capped:
        # Stock is reserved from the SKU itself: locks are taken order → SKU → group (as an
        # order expiry does: it releases stock, then its hook frees the seat), so a join and
        # an expiry never wait on each other in a cycle. This serialises the SKU's joins; a
        # capped campaign (`pool`) does not take the SKU lock at all.
        session.execute(select(Sku.id).where(Sku.id == campaign.sku_id).with_for_update())
    seat = _seat(session, group, qty, now, capped=capped)
    if seat is None and capped and pool.top_up(session, group, qty):
        seat = _seat(session, group, qty, now, capped=capped)
    if seat is None:
        raise GroupFullError(f"group {group.id} has no seat left")
    _bump_quota(session, campaign, user_id, qty)
    seats_taken, joined_seq = seat
    schedule = tiers_from_json(campaign.tiers)
    unit_price = schedule.join_price(seats_taken)
    if group.leader_user_id == user_id and campaign.leader_price_cents is not None:
        unit_price = min(unit_price, campaign.leader_price_cents)
    # A running price experiment (`tuanbox.experiments`): the shopper pays the price their
    # arm showed them (only ever lower; the closing refund then settles at min(arm, tier)).
    from tuanbox.experiments.services import price_for

    unit_price = price_for(session, campaign.id, user_id, unit_price)
    # A member pays min(this, the SKU's member price) and no delivery fee
    # (`tuanbox.membership.pricing`); decided now and kept on the order.
    priced = price_order(
        session,
        user_id=user_id,
        sku_id=campaign.sku_id,
        offer_cents=unit_price,
        qty=qty,
        delivery=delivery,
        now=now,
    )
    unit_price = priced.unit_price_cents
    order = create_order(
        session,
        user_id=user_id,
        sku_id=campaign.sku_id,
        qty=qty,
        unit_price_cents=unit_price,
        delivery_fee_cents=priced.delivery_fee_cents,
        kind="group",
        group_id=group.id,
        station_id=station_id,
        # An unpaid seat lapses with its order: the orders expiry scan frees it (hook).
        pay_timeout_s=pay_timeout_s or DEFAULT_PAY_TIMEOUT_S,
        # A capped campaign's order takes its units over from its group's chunk.
        reserve=not capped,
        stock_held=True,
        merchant_id=campaign.merchant_id,
    )
    member = Member(
        group_id=group.id,
        user_id=user_id,
        order_id=order.id,
        qty=qty,
        joined_seq=joined_seq,
        joined_at=now,
    )
    session.add(member)
    try:
        session.flush()  # the UNIQUE (group_id, user_id) is the last word on duplicates
    except IntegrityError as exc:
        # The same shopper joining twice at once: the second waited for the first's row and
        # lost. The caller's unit of work rolls everything back (seat, quota, order).
        raise AlreadyMemberError("you are already in this group") from exc
    return Joined(group, member, order.id, unit_price, campaign, order)


def _seat(
    session: Session, group: Group, qty: int, now: datetime, *, capped: bool
) -> tuple[int, int] | None:
    """The one statement that decides who gets a seat (and, capped, its units): the row lock
    it takes serialises the group's joiners, and each re-checks the guards on the latest row.
    None when the group is full, closed or (capped) its chunk is short of `qty` units."""
    guards = [
        Group.id == group.id,
        Group.status == GroupStatus.OPEN.value,
        Group.seats_taken < Group.max_size,
        Group.deadline_at > now,
    ]
    values: dict[str, Any] = {"seats_taken": Group.seats_taken + 1, "join_seq": Group.join_seq + 1}
    if capped:
        guards.append(Group.units_taken + qty <= Group.units_held)
        values["units_taken"] = Group.units_taken + qty
    columns = Group.__table__.columns
    row = session.execute(
        update(Group).where(*guards).values(**values).returning(*columns),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if row is None:
        return None
    # The row is locked until commit: what it returned stays current, no re-read needed.
    for column, value in zip(columns, row, strict=True):
        set_committed_value(group, column.key, value)
    return group.seats_taken, group.join_seq


def _bump_quota(session: Session, campaign: Campaign, user_id: str, qty: int) -> None:
    # One round trip: insert the shopper's first units, or add to them where still within
    # the limit (`qty` itself is within it: `_take_seat` checked).
    ins = insert_for(session)(UserQuota).values(campaign_id=campaign.id, user_id=user_id, qty=qty)
    ok = session.execute(
        ins.on_conflict_do_update(
            index_elements=[UserQuota.campaign_id, UserQuota.user_id],
            set_={"qty": UserQuota.qty + ins.excluded.qty},
            where=UserQuota.qty + ins.excluded.qty <= campaign.per_user_limit,
        ).returning(UserQuota.qty),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if ok is None:
        raise UserLimitExceededError(
            f"at most {campaign.per_user_limit} units per shopper in this campaign"
        )


def release_seat(session: Session, group: Group, member: Member) -> bool:
    """Give a seat (and its quota) back while the group is open; hand over leadership.

    The guarded UPDATE is the check: if a closer got the group first (it waits for its lock,
    then sees a closed group), the member stays as the record and nothing changes.
    """
    freed = session.execute(
        update(Group)
        .where(Group.id == group.id, Group.status == "open")
        .values(
            seats_taken=Group.seats_taken - 1,
            paid_count=Group.paid_count - (1 if member.paid else 0),
        )
        .returning(Group.leader_user_id),
        execution_options={"synchronize_session": False},
    ).one_or_none()
    if freed is None:
        return False
    from tuanbox.groupbuy.seats import freed_after_commit

    freed_after_commit(session, group.id, member.user_id)  # stream join writes' seats
    session.execute(delete(Member).where(Member.id == member.id))
    session.execute(
        update(UserQuota)
        .where(UserQuota.campaign_id == group.campaign_id, UserQuota.user_id == member.user_id)
        .values(qty=UserQuota.qty - member.qty),
        execution_options={"synchronize_session": False},
    )
    if freed[0] == member.user_id:
        heir = session.scalar(
            select(Member.user_id)
            .where(Member.group_id == group.id)
            .order_by(Member.joined_seq)
            .limit(1)
        )
        session.execute(
            update(Group).where(Group.id == group.id).values(leader_user_id=heir),
            execution_options={"synchronize_session": False},
        )
    session.flush()
    session.refresh(group)
    return True


def leave_group(session: Session, *, group_id: str, user_id: str, actor: Actor) -> Group:
    """`LeaveGroup`: a member (the leader included) cancels before the group fills.

    The order is cancelled (and refunded if paid); the orders hook then gives the seat back
    and, for the leader, hands leadership to the next member by join order.
    """
    from tuanbox.orders.models import Order
    from tuanbox.orders.services import transition

    # No group lock here: the cancellation below locks order → SKU → group, like an expiry.
    group = get_group(session, group_id)
    member = session.scalar(
        select(Member).where(Member.group_id == group_id, Member.user_id == user_id)
    )
    if member is None:
        raise PermissionDeniedError("you are not a member of this group")
    if group.status != GroupStatus.OPEN:
        raise GroupClosedError("a filled or closed group cannot be left")
    order = session.get(Order, member.order_id)
    assert order is not None
    transition(session, order, "cancelled", actor=actor, reason="left the group before it filled")
    session.refresh(group)
    return group


def group_progress(campaign: Campaign, group: Group, now: datetime) -> Progress:
    return progress(
        tiers_from_json(campaign.tiers),
        seats_taken=group.seats_taken,
        paid=group.paid_count,
        max_size=group.max_size,
        deadline_at=as_utc(group.deadline_at),
        now=now,
    )


def members_of(session: Session, group_id: str) -> list[Member]:
    return list(
        session.scalars(
            select(Member).where(Member.group_id == group_id).order_by(Member.joined_seq)
        )
    )
