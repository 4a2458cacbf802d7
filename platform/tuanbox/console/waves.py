"""Console wave plan: per station, what to pack for which locker door in the next wave."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from tuanbox.api.deps import SettingsDep
from tuanbox.console.auth import StaffDep
from tuanbox.console.fence import ConsoleReadDep
from tuanbox.console.render import page
from tuanbox.db.base import utcnow
from tuanbox.merchant_orders import waveplan

router = APIRouter(include_in_schema=False)


@router.get("/console/waves", response_class=HTMLResponse)
def waves_page(
    request: Request, staff: StaffDep, db: ConsoleReadDep, settings: SettingsDep
) -> HTMLResponse:
    """Stations where the merchant has orders in a wave that has not left yet."""
    stations = waveplan.stations_with_waves(db, staff.merchant_id, now=utcnow())
    plans = [waveplan.plan(db, staff.merchant_id, s.id, now=utcnow()) for s in stations]
    return page(
        request, staff, "orders_waves.html",
        {"plans": plans, "tz": settings.station_timezone}, active="orders",
    )  # fmt: skip


@router.get("/console/waves/{station_id}", response_class=HTMLResponse)
def wave_plan_page(
    station_id: str,
    request: Request,
    staff: StaffDep,
    db: ConsoleReadDep,
    settings: SettingsDep,
    wave: Annotated[str | None, Query(max_length=36)] = None,
) -> HTMLResponse:
    """One station's next wave (or `wave`), door by door, printable."""
    plan = waveplan.plan(db, staff.merchant_id, station_id, now=utcnow(), wave_id=wave)
    return page(
        request, staff, "orders_wave.html",
        {"plan": plan, "tz": settings.station_timezone}, active="orders",
    )  # fmt: skip
