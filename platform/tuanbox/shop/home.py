"""The home page `/`: today's picks, the flash-sale zone and the shopper's pickup station."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SettingsDep
from tuanbox.shop import session
from tuanbox.shop.render import page

router = APIRouter(include_in_schema=False)


@router.get("/", response_model=None)
def home(request: Request, settings: SettingsDep) -> HTMLResponse | RedirectResponse:
    shopper = session.shopper_from(request, settings)
    if shopper is None and session.can_refresh(request):
        return RedirectResponse(f"{session.REFRESH_PATH}?next=/", status_code=303)
    return page(request, "home.html", {"shopper": shopper})
