"""Console returns queue: returns to receive back, and receiving one (which refunds it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.console.auth import StaffDep
from tuanbox.console.fence import ConsoleReadDep, remember_write
from tuanbox.console.render import page
from tuanbox.merchant_orders import queues

router = APIRouter(include_in_schema=False)


@router.get("/console/returns", response_class=HTMLResponse)
def returns_page(
    request: Request, staff: StaffDep, db: ConsoleReadDep, settings: SettingsDep
) -> HTMLResponse:
    """Open returns, oldest first, then the latest closed ones."""
    open_items = queues.returns_queue(db, staff.merchant_id)
    recent = [
        r for r in queues.returns_queue(db, staff.merchant_id, open_only=False, limit=50)
        if r.status not in queues.OPEN_RETURNS
    ]  # fmt: skip
    return page(
        request, staff, "orders_returns.html",
        {"open": open_items, "recent": recent, "tz": settings.station_timezone},
        active="orders",
    )  # fmt: skip


@router.post("/console/returns/{return_id}/received")
def return_received(
    return_id: str, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> RedirectResponse:
    """The goods are back: the order is returned and refunded (receiving twice is a no-op)."""
    queues.receive_return(session, staff.merchant_id, return_id, actor=staff.principal.actor)
    session.commit()
    response = RedirectResponse(f"/console/returns#r-{return_id}", status_code=303)
    remember_write(response, session, settings)  # the queue (replica) shows it at once
    return response
