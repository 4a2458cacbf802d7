"""Group-buy API: campaigns (merchant staff), opening, joining, leaving and viewing groups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from tuanbox.accounts.deps import CurrentUser, Shopper, Staff
from tuanbox.accounts.signin import DEVICE_ID_PATTERN
from tuanbox.api.burst import BurstInputs, HeaderSpec, burst_shopper, check_caller, problem
from tuanbox.api.deps import SessionDep, SessionSource, SettingsDep, session_source_for
from tuanbox.api.openapi_problems import problems
from tuanbox.api.redis_async import redis_for
from tuanbox.audit.services import record
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.errors import PermissionDeniedError, TuanboxError
from tuanbox.groupbuy import admission, seats, services
from tuanbox.groupbuy.domain import Tier
from tuanbox.groupbuy.models import Campaign, Group
from tuanbox.groupbuy.schemas import (
    CampaignIn,
    CampaignOut,
    GroupOut,
    JoinedOut,
    JoinIn,
    MemberOut,
    ProgressOut,
    TierOut,
)
from tuanbox.groupbuy.spec import CampaignSpec
from tuanbox.idempotency import services as idempotency
from tuanbox.idempotency.deps import Idempotent
from tuanbox.idempotency.services import MAX_KEY_LENGTH
from tuanbox.membership.pricing import DeliveryTerms
from tuanbox.orders.models import Order
from tuanbox.ratelimit import rate_limit
from tuanbox.ratelimit.deps import client_ip
from tuanbox.risk.deps import RiskGate, RiskGateDep
from tuanbox.risk.rules import Event
from tuanbox.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["group-buy"])

# Opening a group takes its first seat, so it shares the joins' windows (429 beyond).
JOIN_LIMIT = rate_limit(
    "group-join",
    per_user=(lambda s: s.group_join_per_user_per_min, 60),
    per_ip=(lambda s: s.group_join_per_ip_per_min, 60),
)


def campaign_out(c: Campaign) -> CampaignOut:
    return CampaignOut(
        id=c.id,
        merchant_id=c.merchant_id,
        sku_id=c.sku_id,
        title=c.title,
        kind=c.kind,
        tiers=[TierOut(members=m, price_cents=p) for m, p in c.tiers],
        min_size=c.min_size,
        max_size=c.max_size,
        leader_price_cents=c.leader_price_cents,
        per_user_limit=c.per_user_limit,
        starts_at=services.as_utc(c.starts_at),
        ends_at=services.as_utc(c.ends_at),
        group_ttl_s=c.group_ttl_s,
        station_ids=list(c.station_ids),
        presale=c.presale,
        lot_code=c.lot_code,
        stock_cap=c.stock_cap,
        stock_remaining=c.stock_remaining,
    )


def group_out(
    session: Session, settings: Settings, group: Group, campaign: Campaign | None = None
) -> GroupOut:
    if campaign is None or campaign.id != group.campaign_id:
        campaign = services.get_campaign(session, group.campaign_id)
    p = services.group_progress(campaign, group, utcnow())
    return GroupOut(
        id=group.id,
        campaign_id=group.campaign_id,
        status=group.status,
        leader_user_id=group.leader_user_id,
        deadline_at=services.as_utc(group.deadline_at),
        final_unit_price_cents=group.final_unit_price_cents,
        progress=ProgressOut(**vars(p)),
        members=[
            MemberOut(
                user_id=m.user_id,
                joined_seq=m.joined_seq,
                paid=m.paid,
                is_leader=m.user_id == group.leader_user_id,
            )
            for m in services.members_of(session, group.id)
        ],
        share_url=f"{settings.public_base_url.rstrip('/')}/g/{group.id}",
    )


@router.post(
    "/campaigns",
    response_model=CampaignOut,
    status_code=201,
    responses=problems(401, 403, 422),
)
def create_campaign(body: CampaignIn, user: Staff, session: SessionDep) -> CampaignOut:
    """Create a fixed or tiered group-buy campaign for one of your merchant's SKUs."""
    if user.merchant_id is None:
        raise PermissionDeniedError("only staff of a merchant can create its campaigns")
    spec = CampaignSpec(
        sku_id=body.sku_id,
        title=body.title,
        kind=body.kind,
        tiers=tuple(Tier(t.members, t.price_cents) for t in body.tiers),
        max_size=body.max_size,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        group_ttl_s=body.group_ttl_s,
        leader_price_cents=body.leader_price_cents,
        per_user_limit=body.per_user_limit,
        station_ids=tuple(body.station_ids),
        presale=body.presale,
        lot_code=body.lot_code,
        stock_cap=body.stock_cap,
    )
    campaign = services.create_campaign(
        session, merchant_id=user.merchant_id, actor_id=user.id, spec=spec
    )
    record(
        session,
        user.actor,
        "campaign.create",
        "campaign",
        campaign.id,
        details={"sku_id": body.sku_id, "title": body.title},
        after=body.model_dump(mode="json", exclude={"sku_id", "title"}),
    )
    session.commit()
    return campaign_out(campaign)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut, responses=problems(404))
def get_campaign(campaign_id: str, session: SessionDep) -> CampaignOut:
    """A campaign's terms: tiers, sizes, window, stations."""
    return campaign_out(services.get_campaign(session, campaign_id))


@router.post(
    "/campaigns/{campaign_id}/groups",
    response_model=JoinedOut,
    status_code=201,
    responses=problems(401, 403, 404, 409, 422, 429),
    dependencies=[Depends(JOIN_LIMIT)],
)
def open_group(
    campaign_id: str,
    body: JoinIn,
    user: Shopper,
    session: SessionDep,
    settings: SettingsDep,
    idem: Idempotent,
    risk: RiskGateDep,
) -> JSONResponse:
    """Open a group as its leader (takes the first seat and creates your order).

    Send an `Idempotency-Key` header: a retried request returns the first group. Risk
    control may refuse it (403 `RISK_BLOCKED`) or hold your order for review.
    """
    screening = risk.before_order(session, Event.JOIN, user.id)

    def work() -> tuple[int, object]:
        joined = services.open_group(
            session,
            campaign_id=campaign_id,
            user_id=user.id,
            qty=body.qty,
            station_id=body.station_id,
            now=utcnow(),
            pay_timeout_s=settings.order_pay_timeout_s,
            delivery=DeliveryTerms.of(settings),
        )
        risk.after_order(session, screening, _order(session, joined))
        return 201, joined_out(session, settings, joined)

    return idem.respond(session, user.id, {"campaign_id": campaign_id, **body.model_dump()}, work)


JOIN_INPUTS = BurstInputs(
    JoinIn,
    path=("group_id",),
    headers=(
        HeaderSpec(
            "Idempotency-Key",
            1,
            MAX_KEY_LENGTH,
            "Makes this POST safe to retry: a repeated key returns the first result.",
            "join-7f3a9c2e",
            required=False,
        ),
        HeaderSpec(
            "X-Device-ID",
            8,
            64,
            "The app's random install id: risk control counts orders and accounts per device.",
            "ios-6f1c0b2e9d4a4c1e",
            required=False,
            pattern=DEVICE_ID_PATTERN,
        ),
    ),
)


@router.post(
    "/groups/{group_id}/join",
    response_model=JoinedOut,
    status_code=201,
    responses={
        202: {
            "model": admission.JoinAcceptedOut,
            "description": "Seat held, order being written (TUANBOX_GROUP_JOIN_WRITES=stream "
            "and an Idempotency-Key): repeat with the same key for the 201 answer",
        },
        **problems(401, 403, 404, 409, 422, 429),
    },
    openapi_extra=JOIN_INPUTS.openapi(),
)
async def join_group(request: Request) -> Response:
    """Take a seat in a group; 409 `GROUP_FULL`, `ALREADY_MEMBER` or `GROUP_CLOSED` otherwise,
    429 with `Retry-After` past the per-shopper or (generous) per-IP limit, 403
    `RISK_BLOCKED` when risk control refuses it (or your order is held for review).

    Send an `Idempotency-Key` header: a retried request returns the first answer.
    Body `JoinIn`: `qty` (1 by default) and an optional pickup `station_id`.

    A burst path: the token's revocation and both windows are one Redis round trip on the
    event loop, then the seat, the order and the stored answer are one DB transaction in one
    thread hop (`idempotency.services.run_in_transaction`). With stream writes
    (`TUANBOX_GROUP_JOIN_WRITES=stream`) a join with an `Idempotency-Key` is instead admitted
    by one Redis script (the same revocation and windows, then the group's seats: one round
    trip) and answered 202 `JoinAcceptedOut` at once
    (seat held, order being written by `tuanbox group-joins`); the same request repeated
    with the same key then answers 201 `JoinedOut`, or the refusal the database gave (409
    `GROUP_CLOSED`, 403 `RISK_BLOCKED`, ...; the seat is given back), once written.
    """
    path, headers, body = await JOIN_INPUTS.parse(request)
    user = burst_shopper(request)
    settings: Settings = request.app.state.settings
    key = headers.get("Idempotency-Key")
    try:
        async with redis_for(request) as client:
            if key and settings.group_join_writes == "stream":
                # The caller's checks are in the seat script: one round trip.
                return await admission.join(
                    request, client, user, path["group_id"], body, key,
                    headers.get("X-Device-ID"),
                )  # fmt: skip
            await check_caller(
                request,
                client,
                user,
                admission.LIMIT_NAME,
                per_user=(settings.group_join_per_user_per_min, 60),
                per_ip=(settings.group_join_per_ip_per_min, 60),
            )
        stored = await run_in_threadpool(
            join_in_transaction,
            session_source_for(request),
            RiskGate(settings, client_ip(request), headers.get("X-Device-ID")),
            user.id,
            path["group_id"],
            body,
            headers.get("Idempotency-Key"),
            request.scope["path"],
        )
    except TuanboxError as exc:
        if exc.status >= 500:
            raise  # logged by the app's handler
        return problem(exc, request.scope["path"])
    replayed = {"Idempotent-Replayed": "true"} if stored.replayed else None
    return JSONResponse(stored.body, status_code=stored.status, headers=replayed)


def join_in_transaction(
    source: SessionSource,
    risk: RiskGate,
    user_id: str,
    group_id: str,
    body: JoinIn,
    key: str | None,
    url_path: str,
) -> idempotency.StoredResponse:
    """Take the seat, create the order and store the answer in one transaction (the join
    route's thread hop, and the shop page's join form)."""
    settings = risk.settings
    with source() as session:
        screening = risk.before_order(session, Event.JOIN, user_id)

        def work() -> tuple[int, object]:
            joined = services.join_group(
                session,
                group_id=group_id,
                user_id=user_id,
                qty=body.qty,
                station_id=body.station_id,
                now=utcnow(),
                pay_timeout_s=settings.order_pay_timeout_s,
                delivery=DeliveryTerms.of(settings),
            )
            risk.after_order(session, screening, _order(session, joined))
            seats.taken_after_commit(session, group_id, user_id)  # stream writes' seats
            return 201, joined_out(session, settings, joined)

        return idempotency.run_in_transaction(
            session,
            principal=user_id,
            key=key,
            method="POST",
            path=url_path,
            payload={"group_id": group_id, **body.model_dump()},
            work=work,
            cipher=PiiCipher(settings),
        )


def _order(session: Session, joined: services.Joined) -> Order:
    order = joined.order or session.get(Order, joined.order_id)
    assert order is not None  # just created in this transaction
    return order


def joined_out(session: Session, settings: Settings, joined: services.Joined) -> dict[str, Any]:
    # The seat's UPDATE locked the group row until commit and `join_group` re-read it after,
    # so `joined.group` is current: nothing else can have changed it since.
    return JoinedOut(
        group=group_out(session, settings, joined.group, joined.campaign),
        order_id=joined.order_id,
        unit_price_cents=joined.unit_price_cents,
        delivery_fee_cents=joined.order.delivery_fee_cents if joined.order else 0,
    ).model_dump(mode="json")


@router.post(
    "/groups/{group_id}/leave", response_model=GroupOut, responses=problems(401, 403, 404, 409, 422)
)
def leave_group(
    group_id: str, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> GroupOut:
    """Leave (or, as leader, cancel your part in) a group before it fills.

    Your order is cancelled and refunded if paid; a leaving leader hands over to the next
    member by join order.
    """
    group = services.leave_group(session, group_id=group_id, user_id=user.id, actor=user.actor)
    session.commit()
    return group_out(session, settings, group)


@router.get("/groups/{group_id}", response_model=GroupOut, responses=problems(404))
def get_group(group_id: str, session: SessionDep, settings: SettingsDep) -> GroupOut:
    """A group with its progress: members, needed, next tier and its price, time left."""
    return group_out(session, settings, services.get_group(session, group_id))
