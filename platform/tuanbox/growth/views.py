"""Growth API: a shopper's referral binding, invites and task progress, the leaderboard,
new-user offers; invite tasks (merchant staff and ops, audited), leaderboard rewards and
offers (ops)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import func, select

from tuanbox.accounts.deps import OpsOrAdmin, Principal, Shopper, require_roles
from tuanbox.accounts.models import User
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import Actor, record
from tuanbox.catalog.models import Sku
from tuanbox.coupons.services import get_template
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError, PermissionDeniedError
from tuanbox.growth import binding, invite_tasks, leaderboard, newuser, qualify
from tuanbox.growth.models import InviteTask, NewUserOffer, ReferralBinding
from tuanbox.growth.schemas import (
    BindIn,
    BindOut,
    ClaimIn,
    ClaimOut,
    InvitesOut,
    LeaderboardOut,
    OfferIn,
    OfferOut,
    RewardIn,
    RewardOut,
    StandingOut,
    TaskIn,
    TaskOut,
    TaskProgressOut,
)

router = APIRouter(prefix="/api/v1", tags=["growth"])
StaffOrOps = Annotated[Principal, Depends(require_roles("merchant_staff", "ops", "admin"))]
Kind = Annotated[str, Path(pattern=r"^(week|month)$")]


def _actor(user: Principal) -> Actor:
    return Actor(id=user.id, role=user.role)


def masked(name: str | None) -> str:
    """A leaderboard shows a first character only: shoppers are not listed by name."""
    return (name or "?")[:1] + "**"


# -- the shopper ---------------------------------------------------------------------------


@router.post("/me/referral", response_model=BindOut, responses=problems(401, 403, 409, 422))
def bind_me(body: BindIn, user: Shopper, session: SessionDep) -> BindOut:
    """Bind the shopper to the inviter whose poster or link they came through: the first
    touch wins (a later one answers the inviter on record); self-referral and loops are
    refused (409 REFERRAL_REFUSED with `reason` SELF, LOOP or NOT_A_SHOPPER)."""
    bound = binding.bind(
        session,
        invitee_id=user.id,
        inviter_id=body.inviter_id,
        source=body.source,
        campaign_id=body.campaign_id,
    )
    session.commit()
    return BindOut(
        inviter_id=bound.inviter_id, created=bound.created, campaign_id=bound.campaign_id
    )


@router.get("/me/invites", response_model=InvitesOut, responses=problems(401, 403))
def my_invites(user: Shopper, session: SessionDep) -> InvitesOut:
    """Who invited the shopper, how many they invited and how many of those count (first
    order picked up, nothing refunded), and each running task's progress."""
    invitees = session.scalar(
        select(func.count())
        .select_from(ReferralBinding)
        .where(ReferralBinding.inviter_id == user.id)
    )
    return InvitesOut(
        inviter_id=binding.inviter_of(session, user.id),
        invitees=int(invitees or 0),
        counted=qualify.count_for(session, user.id),
        tasks=[TaskProgressOut(**p) for p in invite_tasks.progress(session, user.id)],
    )


def board(session: SessionDep, settings: SettingsDep, kind: str, me: str | None) -> LeaderboardOut:
    period = leaderboard.period_of(kind, utcnow(), settings.station_timezone)
    places = leaderboard.standings(session, period, limit=10)
    names = dict(
        session.execute(
            select(User.id, User.display_name).where(User.id.in_([p.user_id for p in places]))
        ).all()
    )
    return LeaderboardOut(
        period=period.key,
        starts_at=period.start,
        ends_at=period.end,
        places=[
            StandingOut(
                rank=p.rank,
                name=masked(names.get(p.user_id)),
                invites=p.invites,
                me=p.user_id == me,
            )
            for p in places
        ],
    )


@router.get(
    "/leaderboards/{kind}", response_model=LeaderboardOut, responses=problems(401, 403, 404, 422)
)
def current_leaderboard(
    kind: Kind, user: Shopper, session: SessionDep, settings: SettingsDep
) -> LeaderboardOut:
    """The current week's or month's invite leaderboard (names masked, the shopper marked)."""
    return board(session, settings, kind, user.id)


@router.post(
    "/new-user-offers/{offer_id}/claims",
    response_model=ClaimOut,
    status_code=201,
    responses=problems(401, 403, 404, 409, 422),
)
def claim_offer(
    offer_id: str, body: ClaimIn, user: Shopper, session: SessionDep, settings: SettingsDep
) -> ClaimOut:
    """Claim a new-user offer: its order at the offer price, once per person (account,
    phone, device, payment account): 409 OFFER_ALREADY_CLAIMED names which."""
    row, order = newuser.claim(
        session, settings, offer_id=offer_id, user_id=user.id, device_id=body.device_id
    )
    session.commit()
    return ClaimOut(
        claim_id=row.id, offer_id=row.offer_id, order_id=order.id, price_cents=order.total_cents
    )


@router.get("/new-user-offers", response_model=list[OfferOut], responses=problems(401, 403))
def list_offers(user: Shopper, session: SessionDep) -> list[OfferOut]:
    """The new-user offers running now (one may be claimed per person)."""
    rows = session.scalars(
        select(NewUserOffer)
        .where(NewUserOffer.active.is_(True))
        .order_by(NewUserOffer.id)
        .limit(50)
    )
    return [OfferOut.model_validate(r) for r in rows]


# -- merchant staff and ops ------------------------------------------------------------------


@router.post(
    "/invite-tasks", response_model=TaskOut, status_code=201, responses=problems(401, 403, 404, 422)
)
def create_task(body: TaskIn, user: StaffOrOps, session: SessionDep) -> TaskOut:
    """An invite task; staff make them for their own merchant (with its or the platform's
    coupon template), ops for any merchant or the platform. Audited."""
    merchant_id = body.merchant_id
    if user.role == "merchant_staff":
        if merchant_id not in (None, user.merchant_id):
            raise PermissionDeniedError("staff set up tasks for their own merchant only")
        merchant_id = user.merchant_id
    get_template(session, body.template_id)
    task = invite_tasks.create_task(
        session,
        _actor(user),
        name=body.name,
        goal=body.goal,
        template_id=body.template_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        merchant_id=merchant_id,
    )
    session.commit()
    return TaskOut.model_validate(task)


@router.get("/invite-tasks", response_model=list[TaskOut], responses=problems(401, 403))
def list_tasks(user: StaffOrOps, session: SessionDep) -> list[TaskOut]:
    """Invite tasks, newest first: staff see their merchant's, ops every one."""
    query = select(InviteTask).order_by(InviteTask.created_at.desc(), InviteTask.id).limit(200)
    if user.role == "merchant_staff":
        query = query.where(InviteTask.merchant_id == user.merchant_id)
    return [TaskOut.model_validate(t) for t in session.scalars(query)]


@router.put(
    "/leaderboard-rewards/{kind}", response_model=RewardOut, responses=problems(401, 403, 404, 422)
)
def put_reward(kind: Kind, body: RewardIn, user: OpsOrAdmin, session: SessionDep) -> RewardOut:
    """What the top places of each ended week or month get (a free-order coupon). Audited."""
    get_template(session, body.template_id)
    row = leaderboard.set_reward(
        session,
        kind=kind,
        template_id=body.template_id,
        top_n=body.top_n,
        active=body.active,
        actor_id=user.id,
    )
    record(
        session,
        _actor(user),
        "growth.leaderboard_reward.set",
        "leaderboard_reward",
        kind,
        after=body.model_dump(),
    )
    session.commit()
    return RewardOut.model_validate(row)


@router.post(
    "/new-user-offers",
    response_model=OfferOut,
    status_code=201,
    responses=problems(401, 403, 404, 422),
)
def create_offer(body: OfferIn, user: OpsOrAdmin, session: SessionDep) -> OfferOut:
    """Ops: a new-user offer, a SKU at a first-purchase price. Audited."""
    if session.get(Sku, body.sku_id) is None:
        raise NotFoundError("SKU not found", field="sku_id")
    offer = newuser.create_offer(
        session, sku_id=body.sku_id, name=body.name, price_cents=body.price_cents, actor_id=user.id
    )
    record(
        session,
        _actor(user),
        "growth.offer.create",
        "new_user_offer",
        offer.id,
        after=body.model_dump(),
    )
    session.commit()
    return OfferOut.model_validate(offer)
