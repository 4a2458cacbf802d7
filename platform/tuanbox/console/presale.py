"""Console pre-sale: purchase orders to suppliers and the batches received at station hubs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from tuanbox.api.deps import SettingsDep
from tuanbox.console.auth import StaffDep
from tuanbox.console.fence import ConsoleReadDep
from tuanbox.console.render import page
from tuanbox.db.base import utcnow
from tuanbox.errors import ConflictError
from tuanbox.merchant_orders import queues
from tuanbox.presale.services import purchase_order, to_csv

router = APIRouter(include_in_schema=False)


@router.get("/console/presale", response_class=HTMLResponse)
def presale_page(
    request: Request, staff: StaffDep, db: ConsoleReadDep, settings: SettingsDep
) -> HTMLResponse:
    """The merchant's pre-sales: what was received at which hub, what still waits."""
    campaigns = queues.presale_campaigns(db, staff.merchant_id)
    return page(
        request, staff, "orders_presale.html",
        {"campaigns": campaigns, "tz": settings.station_timezone}, active="orders",
    )  # fmt: skip


@router.get("/console/presale/{campaign_id}", response_class=HTMLResponse)
def purchase_order_page(
    campaign_id: str,
    request: Request,
    staff: StaffDep,
    db: ConsoleReadDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """A closed pre-sale's purchase order (demand per SKU and lot); while it runs, why not."""
    campaign = queues.own_campaign(db, staff.merchant_id, campaign_id)
    try:
        po, pending = purchase_order(db, campaign.id, now=utcnow()), None
    except ConflictError as exc:  # not a pre-sale, or still running: say so on the page
        po, pending = None, str(exc)
    return page(
        request, staff, "orders_po.html",
        {"campaign": campaign, "po": po, "pending": pending, "tz": settings.station_timezone},
        active="orders",
    )  # fmt: skip


@router.get("/console/presale/{campaign_id}/purchase-order.csv")
def purchase_order_csv(campaign_id: str, staff: StaffDep, db: ConsoleReadDep) -> Response:
    """The purchase order as CSV for the supplier (409 while the campaign runs)."""
    campaign = queues.own_campaign(db, staff.merchant_id, campaign_id)
    po = purchase_order(db, campaign.id, now=utcnow())
    return Response(
        to_csv(po),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="po-{po.campaign_id}.csv"',
                 "Cache-Control": "no-store"},
    )  # fmt: skip
