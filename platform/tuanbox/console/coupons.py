"""Console coupon pages: coupon templates (every kind the coupons API makes: amount or percent
off with a cap, a threshold or none, for everyone, new users or dormant ones; validity,
per-user limit, stacking), pausing them, issuing them to a segment, to listed shoppers or by
the template's rule, with issued / used / returned counts.

Everything goes through the coupons service; every write is audited in the transaction that
makes it, and every template is the signed-in staff's merchant's (another merchant's is not
found). Strings are in the ``growth`` catalog (``locale/*/LC_MESSAGES/growth.po``), shared
with ``invites.py``."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.audit.services import record
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.forms import CONTROL, FormId, Name, Problems, RowId, Short, local_input
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.render import page
from tuanbox.coupons import services as coupons
from tuanbox.coupons.models import Coupon, CouponEntry, CouponTemplate
from tuanbox.db.base import utcnow
from tuanbox.errors import NotFoundError, TuanboxError
from tuanbox.segments import services as segments
from tuanbox.settings import Settings

router = APIRouter(include_in_schema=False)
Choice = Annotated[str, Form(max_length=16)]
MAX_USERS = 1000  # shoppers one "to these shoppers" issue may list
USER_ID = re.compile(r"[A-Za-z0-9-]{1,36}")
RETURNED = ("released", "restored", "expired")  # back from a cancelled or refunded order
REVOKED = ("revoked", "erased")  # taken back: a task's count fell, an account erased


@dataclass(frozen=True)
class TemplateRow:
    t: CouponTemplate
    issued: int
    used: int
    returned: int
    revoked: int


def _own_template(session: Session, staff: ConsoleStaff, template_id: str) -> CouponTemplate:
    template = session.get(CouponTemplate, template_id)
    if template is None or template.merchant_id != staff.merchant_id:
        raise NotFoundError("coupon template not found")
    return template


def _rows(session: Session, templates: list[CouponTemplate]) -> list[TemplateRow]:
    """Each template with its counts: issued (the template's counter), in use now (held by
    an order), returned (back from a cancelled or refunded order) and revoked."""
    ids = [t.id for t in templates]
    used = dict(
        session.execute(
            select(Coupon.template_id, func.count())
            .where(Coupon.template_id.in_(ids), Coupon.status == "used")
            .group_by(Coupon.template_id)
        ).all()
    )
    entries: dict[tuple[str, str], int] = {}
    for template_id, kind, n in session.execute(
        select(Coupon.template_id, CouponEntry.kind, func.count())
        .join(Coupon, Coupon.id == CouponEntry.coupon_id)
        .where(Coupon.template_id.in_(ids), CouponEntry.kind.in_([*RETURNED, *REVOKED]))
        .group_by(Coupon.template_id, CouponEntry.kind)
    ).all():
        entries[(template_id, kind)] = int(n)
    return [
        TemplateRow(
            t,
            t.issued_count,
            int(used.get(t.id, 0)),
            sum(entries.get((t.id, k), 0) for k in RETURNED),
            sum(entries.get((t.id, k), 0) for k in REVOKED),
        )
        for t in templates
    ]


def merchant_templates(session: Session, merchant_id: str) -> list[CouponTemplate]:
    return list(
        session.scalars(
            select(CouponTemplate)
            .where(CouponTemplate.merchant_id == merchant_id)
            .order_by(CouponTemplate.created_at.desc(), CouponTemplate.id)
            .limit(200)
        )
    )


def _coupons_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    settings: Settings,
    problems: list[str],
    typed: dict[str, str],
    status: int,
) -> HTMLResponse:
    now = utcnow()
    defaults = {
        "valid_from": local_input(now, settings.station_timezone),
        "valid_until": local_input(now + timedelta(days=30), settings.station_timezone),
        "per_user_limit": "1",
        "kind": "amount_off",
        "audience": "all",
    }
    return page(
        request, staff, "growth_coupons.html",
        {"rows": _rows(session, merchant_templates(session, staff.merchant_id)),
         "problems": problems, "v": {**defaults, **typed}},
        active="coupons", status_code=status,
    )  # fmt: skip


@router.get("/console/coupons", response_class=HTMLResponse)
def coupons_page(
    request: Request, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    return _coupons_page(request, staff, session, settings, [], {}, 200)


@router.post("/console/coupons", response_model=None)
def create_template(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    name: Name,
    kind: Choice,
    audience: Choice = "all",
    amount_off: Short = "",
    percent_off: Short = "",
    max_off: Short = "",
    threshold: Short = "",
    per_user_limit: Short = "1",
    total_limit: Short = "",
    valid_from: Short = "",
    valid_until: Short = "",
    valid_days: Short = "",
    stackable: Short = "",
) -> HTMLResponse | RedirectResponse:
    """A coupon template of the staff's merchant; every mistake in words beside the form."""
    _ = gettext_for(locale_of(request))
    p = Problems(_)
    typed = {k: v for k, v in locals().items() if isinstance(v, str) and k != "_"}
    title = name.strip()
    if not title:
        p.add(_("Name: please enter a name."))
    elif CONTROL.search(title):
        p.add(_("Name: use letters, digits and punctuation only."))
    if kind not in ("amount_off", "percent_off"):
        p.add(_("Discount: choose an amount off or a percentage off."))
    if audience not in ("all", "new_user", "wake_up"):
        p.add(_("For whom: choose everyone, new shoppers or dormant shoppers."))
    fields: dict[str, Any] = {"amount_off_cents": 0, "percent_off": 0, "max_off_cents": None}
    if kind == "amount_off":
        fields["amount_off_cents"] = p.money(amount_off, _("Amount off"))
        if fields["amount_off_cents"] == 0:
            p.add(_("Amount off: must be more than ¥0."))
    elif kind == "percent_off":
        fields["percent_off"] = p.whole(percent_off, _("Percent off"), 1, 99)
        fields["max_off_cents"] = p.money(max_off, _("At most off"), required=False) or None
    fields["threshold_cents"] = p.money(threshold, _("Minimum spend"), required=False) or 0
    fields["per_user_limit"] = p.whole(per_user_limit, _("Per shopper"), 1, 1000)
    fields["total_limit"] = p.whole(total_limit, _("In total"), 1, 10**9, required=False)
    fields["valid_days"] = p.whole(valid_days, _("Days valid after issue"), 1, 3650, required=False)
    starts = p.when(valid_from, _("Valid from"), settings.station_timezone)
    ends = p.when(valid_until, _("Valid until"), settings.station_timezone)
    if starts and ends and starts >= ends:
        p.add(_("Valid until: must be after the start."))
    for when, label in ((starts, _("Valid from")), (ends, _("Valid until"))):
        if when is not None and not 2000 <= when.year <= 2200:
            p.add(_("%(field)s: choose a date between 2000 and 2200.") % {"field": label})
    if p:
        return _coupons_page(request, staff, session, settings, p.items, typed, 422)
    try:
        template = coupons.create_template(
            session, created_by=staff.id, merchant_id=staff.merchant_id, name=title[:100],
            kind=kind, audience=audience, stackable=stackable == "on",
            valid_from=starts, valid_until=ends, **fields,
        )  # fmt: skip
    except TuanboxError as exc:
        session.rollback()
        return _coupons_page(request, staff, session, settings, [str(exc)], typed, 422)
    record(
        session, staff.principal.actor, "coupon.template_created", "coupon_template",
        template.id, details={"name": template.name, "merchant_id": staff.merchant_id,
                              "via": "console"},
        after={"kind": kind, "audience": audience, "stackable": template.stackable,
               "valid_from": template.valid_from.isoformat(),
               "valid_until": template.valid_until.isoformat(), **fields},
    )  # fmt: skip
    session.commit()
    return RedirectResponse(f"/console/coupons/{template.id}", status_code=303)


def _template_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    template: CouponTemplate,
    problems: list[str],
    status: int,
    done: str = "",
) -> HTMLResponse:
    return page(
        request, staff, "growth_coupon.html",
        {"row": _rows(session, [template])[0], "problems": problems, "done": done,
         "segments": segments.listing(session, staff.merchant_id),
         "key": uuid.uuid4().hex},
        active="coupons", status_code=status,
    )  # fmt: skip


@router.get("/console/coupons/{template_id}", response_class=HTMLResponse)
def template_page(
    request: Request,
    template_id: RowId,
    staff: StaffDep,
    session: SessionDep,
    issued: Annotated[int | None, Query(ge=0, le=10**9)] = None,
    replayed: Annotated[int, Query(ge=0, le=10**9)] = 0,
    skipped: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> HTMLResponse:
    """The template, its counts, the issue forms; after an issue, what it did."""
    template = _own_template(session, staff, template_id)
    done = "" if issued is None else _issued_note(request, issued, replayed, skipped)
    return _template_page(request, staff, session, template, [], 200, done=done)


def _issued_note(request: Request, issued: int, replayed: int, skipped: int) -> str:
    _ = gettext_for(locale_of(request))
    return _("Issued %(n)s coupons (%(again)s already had this issue's, %(skipped)s skipped: "
             "over the limit or not for them).") % {
        "n": issued, "again": replayed, "skipped": skipped}  # fmt: skip


@router.post("/console/coupons/{template_id}/issue", response_model=None)
def issue_template(
    request: Request,
    template_id: RowId,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    target: Choice = "",
    key: Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9]*$")] = "",
    segment_id: FormId = "",
    user_ids: Annotated[str, Form(max_length=40_000)] = "",
) -> HTMLResponse | RedirectResponse:
    """Issue to a segment's members, to listed shoppers or by the template's rule. The form's
    key (made when the page was drawn) makes a double submit one issue."""
    _ = gettext_for(locale_of(request))
    template = _own_template(session, staff, template_id)
    problems: list[str] = []
    users: list[str] = []
    if target == "segment":
        if not segment_id:
            problems.append(_("Segment: choose a segment."))
        else:
            segment = segments.get(session, staff.merchant_id, segment_id)
            if segments.count(session, segment) > coupons.MAX_BATCH:
                problems.append(_("This segment has more than %(n)s shoppers: choose a smaller "
                                  "one.") % {"n": coupons.MAX_BATCH})  # fmt: skip
            else:
                users = segments.members(session, segment)
                if not users:
                    problems.append(_("This segment has no shoppers now."))
    elif target == "users":
        users = [u for u in re.split(r"[\s,;]+", user_ids) if u]
        bad = [u for u in users if not USER_ID.fullmatch(u)]
        if not users:
            problems.append(_("Shoppers: enter at least one shopper id."))
        elif bad:
            problems.append(_("Shoppers: %(id)s is not a shopper id.") % {"id": bad[0][:40]})
        elif len(users) > MAX_USERS:
            problems.append(_("Shoppers: at most %(n)s at a time.") % {"n": MAX_USERS})
    elif target == "rule":
        if template.audience == "all":
            problems.append(_("A coupon for everyone goes to a segment or to listed shoppers, "
                              "not by rule."))  # fmt: skip
    else:
        problems.append(_("Issue to: choose a segment, shoppers or the rule."))
    if not template.active:
        problems.append(_("This template is paused: resume it to issue coupons."))
    if problems:
        return _template_page(request, staff, session, template, problems, 422)
    issue_key = f"console:{template.id}:{key or uuid.uuid4().hex}"
    try:
        if target == "rule":
            result = coupons.issue_by_rule(
                session, template.id, issue_key, actor_id=staff.id,
                dormant_days=settings.coupon_dormant_days,
            )  # fmt: skip
        else:
            result = coupons.issue_to_users(
                session, template.id, users, issue_key,
                source="list" if target == "segment" else "manual", actor_id=staff.id,
                dormant_days=settings.coupon_dormant_days,
            )  # fmt: skip
    except TuanboxError as exc:
        session.rollback()
        template = _own_template(session, staff, template_id)
        return _template_page(request, staff, session, template, [str(exc)], 422)
    counts = {"issued": len(result.issued), "replayed": len(result.replayed),
              "skipped": len(result.skipped)}  # fmt: skip
    record(
        session, staff.principal.actor, "coupon.issued", "coupon_template", template.id,
        details={"key": key, "target": target, "segment_id": segment_id or None,
                 "via": "console", **counts,
                 "coupons": [c.id for c in result.issued][:1000]},
    )  # fmt: skip
    session.commit()
    query = "&".join(f"{k}={v}" for k, v in counts.items())
    return RedirectResponse(f"/console/coupons/{template_id}?{query}#issued", status_code=303)


def _set_template(
    template_id: str, staff: ConsoleStaff, session: Session, active: bool
) -> RedirectResponse:
    _own_template(session, staff, template_id)
    template, before = coupons.set_active(session, template_id, active)
    record(
        session, staff.principal.actor,
        "coupon.template_resumed" if active else "coupon.template_paused",
        "coupon_template", template.id, details={"via": "console"},
        before={"active": before}, after={"active": active},
    )  # fmt: skip
    session.commit()
    return RedirectResponse(f"/console/coupons/{template_id}", status_code=303)


@router.post("/console/coupons/{template_id}/pause")
def pause_template(template_id: RowId, staff: StaffDep, session: SessionDep) -> RedirectResponse:
    return _set_template(template_id, staff, session, False)


@router.post("/console/coupons/{template_id}/resume")
def resume_template(template_id: RowId, staff: StaffDep, session: SessionDep) -> RedirectResponse:
    return _set_template(template_id, staff, session, True)


def _nav_labels() -> None:
    """Never called: lets the catalog extractor see this module's nav msgid."""
    _ = gettext_for("en")
    _("Coupons")
