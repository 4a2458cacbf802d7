"""Console campaign actions: pause, resume and end early a group-buy campaign, cancel a flash
sale before it starts (``groupbuy.lifecycle``, which audits each), for the signed-in staff's
merchant; a change the campaign's state refuses is the list page with a 409 and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.campaigns import list_page
from tuanbox.console.forms import RowId
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.db.base import utcnow
from tuanbox.groupbuy import lifecycle
from tuanbox.settings import Settings

router = APIRouter(include_in_schema=False)
Reason = Annotated[str, Form(max_length=500)]


def _refused(
    request: Request, staff: ConsoleStaff, session: Session, settings: Settings, action: str
) -> HTMLResponse:
    """A pause, resume, end or cancel the campaign's state does not allow, said in words."""
    _ = gettext_for(locale_of(request))
    texts = {
        "pause": _("Only a scheduled or running campaign can be paused; this one is not."),
        "resume": _("Only a paused campaign can be resumed; this one is not paused."),
        "end": _("This campaign has already ended."),
        "cancel": _(
            "A flash sale can be cancelled only until %(n)s minutes before it starts; this one "
            "starts sooner or has already started."
        )
        % {"n": int(lifecycle.CANCEL_LEAD.total_seconds() // 60)},
    }
    return list_page(request, staff, session, settings, [texts[action]], 409)


# What the list page says after each change (``?done=``); the keys are ``_refused``'s.
DONE = {"pause": "paused", "resume": "resumed", "end": "ended", "cancel": "cancelled"}


def _change(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    settings: Settings,
    action: str,
    step: Callable[..., object],
    target_id: str,
    *reason: str,
) -> HTMLResponse | RedirectResponse:
    """Run one ``groupbuy.lifecycle`` step on the staff's merchant's campaign or sale, now;
    one the state refuses is a 409 page in words, a done one goes back to the list."""
    try:
        step(session, staff.principal.actor, staff.merchant_id, target_id, utcnow(), *reason)
    except lifecycle.CampaignStateError:
        return _refused(request, staff, session, settings, action)
    session.commit()
    return RedirectResponse(f"/console/campaigns?done={DONE[action]}", status_code=303)


@router.post("/console/campaigns/{campaign_id}/pause", response_model=None)
def pause(
    campaign_id: RowId,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse | RedirectResponse:
    return _change(request, staff, session, settings, "pause", lifecycle.pause, campaign_id)


@router.post("/console/campaigns/{campaign_id}/resume", response_model=None)
def resume(
    campaign_id: RowId,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse | RedirectResponse:
    return _change(request, staff, session, settings, "resume", lifecycle.resume, campaign_id)


@router.post("/console/campaigns/{campaign_id}/end", response_model=None)
def end_early(
    campaign_id: RowId,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    reason: Reason = "",
) -> HTMLResponse | RedirectResponse:
    why = reason.strip() or "ended early in the console"
    return _change(request, staff, session, settings, "end", lifecycle.end_early, campaign_id, why)


@router.post("/console/flash-sales/{sale_id}/cancel", response_model=None)
def cancel_sale(
    sale_id: RowId,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    reason: Reason = "",
) -> HTMLResponse | RedirectResponse:
    why = reason.strip() or "cancelled in the console"
    return _change(request, staff, session, settings, "cancel", lifecycle.cancel_sale, sale_id, why)
