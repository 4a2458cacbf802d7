"""Console invite pages: invite tasks ("invite N new buyers → this coupon") with their grant
counts, new-user offers on the merchant's own SKUs with their claims, and the invite
leaderboard of the week and the month.

Everything goes through the growth services; every write is audited in the transaction that
makes it, and every object is the signed-in staff's merchant's (another merchant's is not
found). Strings are in the ``growth`` catalog (``locale/*/LC_MESSAGES/growth.po``), shared
with ``coupons.py``."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.audit.services import record
from tuanbox.catalog.models import Product, Sku
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.coupons import merchant_templates
from tuanbox.console.forms import CONTROL, FormId, Name, Problems, RowId, Short, local_input
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import page
from tuanbox.coupons.models import CouponTemplate
from tuanbox.db.base import utcnow
from tuanbox.errors import TuanboxError
from tuanbox.growth import invite_tasks, newuser
from tuanbox.growth.models import InviteTask, NewUserClaim, NewUserOffer, TaskGrant
from tuanbox.settings import Settings

router = APIRouter(include_in_schema=False)


def _own_skus(session: Session, merchant_id: str) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Sku.id, Product.name, Sku.name)
        .join(Product, Product.id == Sku.product_id)
        .where(Product.merchant_id == merchant_id)
        .order_by(Product.name, Sku.name)
        .limit(500)
    ).all()
    return [(sku_id, f"{product} · {sku}") for sku_id, product, sku in rows]


def _invites_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    settings: Settings,
    problems: list[str],
    typed: dict[str, str],
    status: int,
) -> HTMLResponse:
    from tuanbox.growth.views import board

    now = utcnow()
    tasks = list(
        session.scalars(
            select(InviteTask)
            .where(InviteTask.merchant_id == staff.merchant_id)
            .order_by(InviteTask.created_at.desc(), InviteTask.id)
            .limit(200)
        )
    )
    grants: dict[tuple[str, str], int] = {}
    for task_id, state, n in session.execute(
        select(TaskGrant.task_id, TaskGrant.status, func.count())
        .where(TaskGrant.task_id.in_([t.id for t in tasks]))
        .group_by(TaskGrant.task_id, TaskGrant.status)
    ).all():
        grants[(task_id, state)] = int(n)
    offers = list(
        session.scalars(
            select(NewUserOffer)
            .join(Sku, Sku.id == NewUserOffer.sku_id)
            .join(Product, Product.id == Sku.product_id)
            .where(Product.merchant_id == staff.merchant_id)
            .order_by(NewUserOffer.created_at.desc(), NewUserOffer.id)
            .limit(200)
        )
    )
    claims: dict[tuple[str, str], int] = {}
    for offer_id, state, n in session.execute(
        select(NewUserClaim.offer_id, NewUserClaim.status, func.count())
        .where(NewUserClaim.offer_id.in_([o.id for o in offers]))
        .group_by(NewUserClaim.offer_id, NewUserClaim.status)
    ).all():
        claims[(offer_id, state)] = int(n)
    templates = [(t.id, t.name) for t in merchant_templates(session, staff.merchant_id) if t.active]
    defaults = {
        "starts_at": local_input(now, settings.station_timezone),
        "ends_at": local_input(now + timedelta(days=30), settings.station_timezone),
        "goal": "3",
    }
    return page(
        request, staff, "growth_invites.html",
        {"tasks": tasks, "grants": grants, "offers": offers, "claims": claims,
         "templates": templates, "skus": _own_skus(session, staff.merchant_id),
         "boards": [board(session, settings, kind, None) for kind in ("week", "month")],
         "problems": problems, "v": {**defaults, **typed}},
        active="invites", status_code=status,
    )  # fmt: skip


@router.get("/console/invites", response_class=HTMLResponse)
def invites_page(
    request: Request, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    return _invites_page(request, staff, session, settings, [], {}, 200)


@router.post("/console/invites/tasks", response_model=None)
def create_task(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    name: Name,
    template_id: FormId,
    goal: Short = "",
    starts_at: Short = "",
    ends_at: Short = "",
) -> HTMLResponse | RedirectResponse:
    """ "Invite N new buyers → this coupon" for the staff's merchant (audited by the service)."""
    _ = gettext_for(locale_of(request))
    p = Problems(_)
    typed = {"task_name": name, "template_id": template_id, "goal": goal,
             "starts_at": starts_at, "ends_at": ends_at}  # fmt: skip
    title = name.strip()
    if not title or CONTROL.search(title):
        p.add(_("Name: please enter a name (letters, digits and punctuation)."))
    wanted = p.whole(goal, _("New buyers to invite"), 1, 1000)
    starts = p.when(starts_at, _("Starts"), settings.station_timezone)
    ends = p.when(ends_at, _("Ends"), settings.station_timezone)
    if starts and ends and starts >= ends:
        p.add(_("Ends: must be after the start."))
    template = session.get(CouponTemplate, template_id) if template_id else None
    if template is None or template.merchant_id != staff.merchant_id:
        p.add(_("Reward: choose one of your coupon templates."))
    if p:
        return _invites_page(request, staff, session, settings, p.items, typed, 422)
    assert wanted is not None and starts is not None and ends is not None
    try:
        invite_tasks.create_task(
            session, staff.principal.actor, name=title, goal=wanted, template_id=template_id,
            starts_at=starts, ends_at=ends, merchant_id=staff.merchant_id,
        )  # fmt: skip
    except TuanboxError as exc:
        session.rollback()
        return _invites_page(request, staff, session, settings, [str(exc)], typed, 422)
    session.commit()
    return RedirectResponse("/console/invites#tasks", status_code=303)


def _set_task(
    task_id: str, staff: ConsoleStaff, session: Session, active: bool
) -> RedirectResponse:
    invite_tasks.set_active(session, staff.principal.actor, task_id, active, staff.merchant_id)
    session.commit()
    return RedirectResponse("/console/invites#tasks", status_code=303)


@router.post("/console/invites/tasks/{task_id}/pause")
def pause_task(task_id: RowId, staff: StaffDep, session: SessionDep) -> RedirectResponse:
    return _set_task(task_id, staff, session, False)


@router.post("/console/invites/tasks/{task_id}/resume")
def resume_task(task_id: RowId, staff: StaffDep, session: SessionDep) -> RedirectResponse:
    return _set_task(task_id, staff, session, True)


@router.post("/console/invites/offers", response_model=None)
def create_offer(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    name: Name,
    sku_id: FormId,
    price: Short = "",
) -> HTMLResponse | RedirectResponse:
    """A new-user offer (one per person) on one of the merchant's SKUs; audited."""
    _ = gettext_for(locale_of(request))
    p = Problems(_)
    typed = {"offer_name": name, "sku_id": sku_id, "price": price}
    title = name.strip()
    if not title or CONTROL.search(title):
        p.add(_("Name: please enter a name (letters, digits and punctuation)."))
    cents = p.money(price, _("Offer price"))
    if cents == 0:
        p.add(_("Offer price: must be more than ¥0."))
    if sku_id not in dict(_own_skus(session, staff.merchant_id)):
        p.add(_("Product: choose one of your products."))
    if p:
        return _invites_page(request, staff, session, settings, p.items, typed, 422)
    assert cents is not None
    offer = newuser.create_offer(
        session, sku_id=sku_id, name=title, price_cents=cents, actor_id=staff.id
    )
    record(
        session, staff.principal.actor, "growth.offer.create", "new_user_offer", offer.id,
        details={"via": "console", "merchant_id": staff.merchant_id},
        after={"sku_id": sku_id, "name": title, "price_cents": cents},
    )  # fmt: skip
    session.commit()
    return RedirectResponse("/console/invites#offers", status_code=303)


def _nav_labels() -> None:
    """Never called: lets the catalog extractor see this module's nav msgid."""
    _ = gettext_for("en")
    _("Invites")
