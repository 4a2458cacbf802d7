"""The upcoming flash sale's "remind me": ask, cancel, and the shopper's own state as JSON
(the sale page is cached, so it cannot say whether this shopper asked)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.db.base import utcnow
from tuanbox.flashsale import reminders
from tuanbox.settings import Settings
from tuanbox.shop import session
from tuanbox.shop.campaign import Id

router = APIRouter(include_in_schema=False)


def _shopper_id(request: Request, settings: Settings) -> str | None:
    shopper = session.shopper_from(request, settings)
    return shopper.id if shopper is not None and shopper.role == "shopper" else None


@router.post("/f/{sale_id}/remind")
def ask(sale_id: Id, request: Request, settings: SettingsDep, db: SessionDep) -> RedirectResponse:
    """Remember to tell the shopper before the sale starts; a second press says the same."""
    session.check_same_origin(request)
    here = f"/f/{sale_id}"
    user_id = _shopper_id(request, settings)
    if user_id is None:
        return RedirectResponse(f"/signin?next={here}", status_code=303)
    try:
        reminders.ask(db, sale_id, user_id, now=utcnow())
    except reminders.SaleStartedError as exc:
        db.rollback()
        return RedirectResponse(f"{here}?e={exc.code}", status_code=303)
    db.commit()
    return RedirectResponse(f"{here}?r=on", status_code=303)


@router.post("/f/{sale_id}/remind/cancel")
def cancel(
    sale_id: Id, request: Request, settings: SettingsDep, db: SessionDep
) -> RedirectResponse:
    session.check_same_origin(request)
    here = f"/f/{sale_id}"
    user_id = _shopper_id(request, settings)
    if user_id is None:
        return RedirectResponse(f"/signin?next={here}", status_code=303)
    reminders.cancel(db, sale_id, user_id)
    db.commit()
    return RedirectResponse(f"{here}?r=off", status_code=303)


@router.get("/f/{sale_id}/remind.json")
def state(sale_id: Id, request: Request, settings: SettingsDep, db: SessionDep) -> JSONResponse:
    """Whether the cookie's shopper asked for this sale's reminder (false when signed out)."""
    user_id = _shopper_id(request, settings)
    on = user_id is not None and reminders.is_asked(db, sale_id, user_id)
    return JSONResponse({"on": on}, headers={"Cache-Control": "private, no-store"})
