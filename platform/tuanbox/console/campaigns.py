"""Campaigns of every kind (fixed, tiered, pre-sale, flash sale): list and create, for the
signed-in staff's merchant (pause, resume, end early and cancel: ``campaign_actions.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.audit.services import record
from tuanbox.bounds import MAX_STATIONS_PER_CAMPAIGN
from tuanbox.catalog.models import Lot, Product, Sku
from tuanbox.console import campaign_form as cf
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.forms import Problems, Short, local_input
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import page
from tuanbox.db.base import utcnow
from tuanbox.errors import TuanboxError
from tuanbox.flashsale.models import FlashSale
from tuanbox.groupbuy import lifecycle
from tuanbox.groupbuy.models import Campaign
from tuanbox.groupbuy.services import as_utc
from tuanbox.settings import Settings

router = APIRouter(include_in_schema=False)
Text200 = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    kind: str  # fixed | tiered | presale | flash
    state: str  # scheduled | running | paused | ended
    starts_at: datetime
    ends_at: datetime
    price_from: int
    sku: str
    stock: str


def _skus(session: Session, merchant_id: str) -> dict[str, cf.SkuChoice]:
    rows = session.execute(
        select(Sku, Product.name)
        .join(Product, Product.id == Sku.product_id)
        .where(Product.merchant_id == merchant_id, Sku.active.is_(True))
        .order_by(Product.name, Sku.name)
    ).all()
    return {
        sku.id: cf.SkuChoice(
            sku.id,
            f"{name} · {sku.name}",
            sku.stock_on_hand - sku.stock_reserved,
            sku.stock_on_hand,
            sku.stock_reserved,
            sku.price_cents,
        )
        for sku, name in rows
    }


def _stations(session: Session) -> dict[str, str]:
    """Every pickup station, id → name (a campaign may be offered at some of them)."""
    from tuanbox.lockers.models import Station

    rows = session.execute(select(Station.id, Station.name).order_by(Station.name)).all()
    return {sid: name for sid, name in rows}


def _windows(session: Session, merchant_id: str, now: datetime) -> dict[str, cf.CampaignWindow]:
    """The merchant's group-buy campaigns that have not ended (a flash sale may sit inside)."""
    rows = session.scalars(
        select(Campaign).where(Campaign.merchant_id == merchant_id, Campaign.ends_at > now)
    )
    return {
        c.id: cf.CampaignWindow(c.id, c.title, c.sku_id, as_utc(c.starts_at), as_utc(c.ends_at))
        for c in rows
    }


def _rows(session: Session, merchant_id: str, now: datetime) -> list[Row]:
    skus = {s.id: s.label for s in _skus(session, merchant_id).values()}
    rows = []
    for c in session.scalars(select(Campaign).where(Campaign.merchant_id == merchant_id)):
        kind = "presale" if c.presale else c.kind
        # The pool columns come with the group-seats change (migration 0022).
        cap = getattr(c, "stock_cap", None)
        stock = "" if cap is None else f"{getattr(c, 'stock_remaining', 0)}/{cap}"
        rows.append(
            Row(
                c.id,
                c.title,
                kind,
                lifecycle.campaign_state(c, now).value,
                as_utc(c.starts_at),
                as_utc(c.ends_at),
                min(p for _m, p in c.tiers),
                skus.get(c.sku_id, ""),
                stock,
            )
        )
    for s in session.scalars(select(FlashSale).where(FlashSale.merchant_id == merchant_id)):
        state = lifecycle.state_of(s.starts_at, s.ends_at, None, now).value
        rows.append(
            Row(
                s.id,
                s.title,
                "flash",
                state,
                as_utc(s.starts_at),
                as_utc(s.ends_at),
                s.price_cents,
                skus.get(s.sku_id, ""),
                f"{s.remaining}/{s.stock_cap}",
            )
        )
    order = {"running": 0, "paused": 1, "scheduled": 2, "ended": 3}
    return sorted(
        rows,
        key=lambda r: (order[r.state], r.ends_at if r.state != "ended" else -r.ends_at.timestamp()),
    )


@router.get("/console/campaigns", response_class=HTMLResponse)
def campaigns_page(
    request: Request, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    return list_page(request, staff, session, settings)


def list_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    settings: Settings,
    problems: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    _ = gettext_for(locale_of(request))
    done = request.query_params.get("done", "")
    notices = {
        "created": _("The campaign was created."),
        "paused": _("The campaign is paused."),
        "resumed": _("The campaign runs again."),
        "ended": _("The campaign has ended."),
        "cancelled": _("The flash sale was cancelled."),
    }
    rows = _rows(session, staff.merchant_id, utcnow())
    context = {
        "rows": rows,
        "notice": None if problems else notices.get(done),
        "problems": problems or [],
        "tz": settings.station_timezone,
        "cancel_lead_min": int(lifecycle.CANCEL_LEAD.total_seconds() // 60),
    }
    return page(request, staff, "campaigns.html", context, active="campaigns", status_code=status)


def _form_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    settings: Settings,
    draft: cf.Draft,
    problems: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = utcnow()
    context = {
        "form": draft.as_form(),
        "skus": list(_skus(session, staff.merchant_id).values()),
        "windows": list(_windows(session, staff.merchant_id, now).values()),
        "problems": problems or [],
        "kinds": cf.KINDS,
        "tz": settings.station_timezone,
        "max_tiers": cf.MAX_TIERS,
        "stations": _stations(session),
    }
    return page(
        request, staff, "campaign_new.html", context, active="campaigns", status_code=status
    )


@router.get("/console/campaigns/new", response_class=HTMLResponse)
def new_campaign(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    kind: Annotated[str, Query(max_length=10)] = "tiered",
) -> HTMLResponse:
    now = utcnow()
    tz = settings.station_timezone
    start = now.replace(second=0, microsecond=0) + timedelta(minutes=5)
    days = timedelta(hours=2) if kind == "flash" else timedelta(days=3)
    draft = cf.Draft(
        kind=kind if kind in cf.KINDS else "tiered",
        starts_at=local_input(start, tz),
        ends_at=local_input(start + days, tz),
    )
    return _form_page(request, staff, session, settings, draft)


@router.post("/console/campaigns", response_model=None)
def create(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    kind: Short = "",
    title: Text200 = "",
    sku_id: Short = "",
    starts_at: Short = "",
    ends_at: Short = "",
    tier_members: Annotated[list[str] | None, Form(max_length=cf.MAX_TIERS)] = None,
    tier_price: Annotated[list[str] | None, Form(max_length=cf.MAX_TIERS)] = None,
    max_size: Short = "",
    group_hours: Short = "",
    per_user_limit: Short = "",
    leader_price: Short = "",
    stock_cap: Short = "",
    lot_code: Short = "",
    price: Short = "",
    within: Short = "",
    station_ids: Annotated[list[str] | None, Form(max_length=MAX_STATIONS_PER_CAMPAIGN)] = None,
) -> HTMLResponse | RedirectResponse:
    members, prices = tier_members or [], tier_price or []
    tiers = [(m[:12], p[:14]) for m, p in zip(members, prices, strict=False)][: cf.MAX_TIERS]
    draft = cf.Draft(
        kind=kind,
        title=title,
        sku_id=sku_id,
        starts_at=starts_at,
        ends_at=ends_at,
        tiers=tiers,
        max_size=max_size,
        group_hours=group_hours,
        per_user_limit=per_user_limit,
        leader_price=leader_price,
        stock_cap=stock_cap,
        lot_code=lot_code,
        price=price,
        within=within,
        stations=[sid[:36] for sid in station_ids or []],
    )
    _ = gettext_for(locale_of(request))
    problems = Problems(_)
    now = utcnow()
    values = cf.check(
        draft,
        problems,
        skus=_skus(session, staff.merchant_id),
        campaigns=_windows(session, staff.merchant_id, now),
        now=now,
        tz=settings.station_timezone,
        stations=frozenset(_stations(session)),
    )
    if isinstance(values, cf.GroupValues) and values.lot_code is not None:
        _check_lot(session, values, problems)
    if values is None or problems:
        return _form_page(request, staff, session, settings, draft, problems.items, 422)
    sale: FlashSale | None = None
    try:
        with session.begin_nested():  # a refusal undoes only what this attempt wrote
            if isinstance(values, cf.SaleValues):
                sale = _create_sale(session, staff, values)
            else:
                _create_campaign(session, staff, values)
    except TuanboxError as exc:  # the domain's own validation, the final word
        problems.add(_("The campaign was refused: %(reason)s") % {"reason": str(exc)})
        return _form_page(request, staff, session, settings, draft, problems.items, 422)
    session.commit()
    if sale is not None:  # its Redis counters, once its row is committed
        from tuanbox.flashsale import services as flash
        from tuanbox.flashsale.views import counters_for

        flash.load_counters(session, counters_for(request), sale)
    return RedirectResponse("/console/campaigns?done=created", status_code=303)


def _check_lot(session: Session, values: cf.GroupValues, problems: Problems) -> None:
    _ = problems._
    product_id = session.scalar(select(Sku.product_id).where(Sku.id == values.sku_id))
    found = session.scalar(
        select(Lot.id).where(Lot.product_id == product_id, Lot.lot_code == values.lot_code)
    )
    if found is None:
        problems.add(
            _(
                "Lot: %(lot)s is not a lot of this SKU's product; record it on the "
                "product's page first, or leave it empty."
            )
            % {"lot": values.lot_code}
        )


def _create_campaign(session: Session, staff: ConsoleStaff, v: cf.GroupValues) -> None:
    from tuanbox.groupbuy.domain import CampaignKind, Tier
    from tuanbox.groupbuy.services import create_campaign
    from tuanbox.groupbuy.spec import CampaignSpec

    # The stock cap is passed only when set: it is the group-seats change's field.
    capped: dict[str, Any] = {"stock_cap": v.stock_cap} if v.stock_cap is not None else {}
    spec = CampaignSpec(
        sku_id=v.sku_id,
        title=v.title,
        kind=CampaignKind.FIXED if len(v.tiers) == 1 else CampaignKind.TIERED,
        tiers=tuple(Tier(m, p) for m, p in v.tiers),
        max_size=v.max_size,
        starts_at=v.starts_at,
        ends_at=v.ends_at,
        group_ttl_s=v.group_ttl_s,
        leader_price_cents=v.leader_price_cents,
        per_user_limit=v.per_user_limit,
        presale=v.presale,
        lot_code=v.lot_code,
        station_ids=v.station_ids,
        **capped,
    )
    campaign = create_campaign(session, merchant_id=staff.merchant_id, actor_id=staff.id, spec=spec)
    record(
        session,
        staff.principal.actor,
        "campaign.create",
        "campaign",
        campaign.id,
        details={"sku_id": v.sku_id, "title": v.title, "via": "console"},
        after={
            "tiers": [list(t) for t in v.tiers],
            "max_size": v.max_size,
            "starts_at": v.starts_at.isoformat(),
            "ends_at": v.ends_at.isoformat(),
            "presale": v.presale,
            "stock_cap": v.stock_cap,
        },
    )


def _create_sale(session: Session, staff: ConsoleStaff, v: cf.SaleValues) -> FlashSale:
    from tuanbox.flashsale import services as flash

    spec = flash.SaleSpec(
        sku_id=v.sku_id,
        title=v.title,
        price_cents=v.price_cents,
        stock_cap=v.stock_cap,
        per_user_limit=v.per_user_limit,
        starts_at=v.starts_at,
        ends_at=v.ends_at,
    )
    sale = flash.create_sale(session, merchant_id=staff.merchant_id, actor_id=staff.id, spec=spec)
    record(
        session,
        staff.principal.actor,
        "flash_sale.create",
        "flash_sale",
        sale.id,
        details={"sku_id": v.sku_id, "title": v.title, "via": "console"},
        after={
            "price_cents": v.price_cents,
            "stock_cap": v.stock_cap,
            "starts_at": v.starts_at.isoformat(),
            "ends_at": v.ends_at.isoformat(),
        },
    )
    return sale
