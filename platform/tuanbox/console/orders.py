"""Console orders: status tabs with counts, filters, keyset pages, bulk actions, exports.

The list, the counts and the exports read through a read session (the replica when one is
configured); a bulk action writes on the primary. The work is in `tuanbox.merchant_orders`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.audit.services import record
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.fence import ConsoleReadDep, ConsoleReadSourceDep, remember_write
from tuanbox.console.i18n import gettext_for
from tuanbox.console.render import page
from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.errors import InvalidInputError
from tuanbox.groupbuy.models import Campaign
from tuanbox.lockers.models import Station
from tuanbox.merchant_orders import bulk, export
from tuanbox.merchant_orders.listing import OrderFilter, Scope, list_orders, tab_counts
from tuanbox.merchant_orders.permissions import may_reveal_pii
from tuanbox.merchant_orders.tabs import Tab
from tuanbox.settings import Settings

router = APIRouter(include_in_schema=False)


def _labels() -> None:
    """Never called: lets the catalog extractor see the tab and status msgids."""
    _ = gettext_for("en")
    _("Pending payment"), _("Grouping"), _("To ship"), _("Awaiting pickup"), _("Completed")
    _("After-sales"), _("Closed"), _("All")
    _("pending_payment"), _("paid"), _("confirmed"), _("allocated"), _("ready_for_pickup")
    _("picked_up"), _("completed"), _("cancelled"), _("expired"), _("refunded")
    _("quality_hold"), _("return_requested"), _("returned")
    _("requested"), _("dropped_off"), _("received"), _("withdrawn")
    _("ambient"), _("chilled"), _("frozen")


TAB_LABELS: dict[Tab, str] = {
    Tab.PENDING_PAYMENT: "Pending payment",
    Tab.GROUPING: "Grouping",
    Tab.TO_SHIP: "To ship",
    Tab.AWAITING_PICKUP: "Awaiting pickup",
    Tab.COMPLETED: "Completed",
    Tab.AFTER_SALES: "After-sales",
    Tab.CLOSED: "Closed",
}


def _date(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError("a date is YYYY-MM-DD", field=field) from exc


def order_filter(
    settings: SettingsDep,
    tab: Annotated[str | None, Query(max_length=20)] = None,
    campaign: Annotated[str | None, Query(max_length=36)] = None,
    station: Annotated[str | None, Query(max_length=36)] = None,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
) -> OrderFilter:
    try:
        chosen = Tab(tab) if tab else None
    except ValueError as exc:
        raise InvalidInputError("no such tab", field="tab") from exc
    return OrderFilter(
        tab=chosen,
        campaign_id=campaign or None,
        station_id=station or None,
        date_from=_date(date_from, "from"),
        date_to=_date(date_to, "to"),
        q=(q or "").strip() or None,
        tz=settings.station_timezone,
    )


FilterDep = Annotated[OrderFilter, Depends(order_filter)]


def scope_of(primary: Session, staff: ConsoleStaff, settings: Settings) -> Scope:
    """The staff's merchant; phones and names in clear only with a grant, read on the
    primary (a revoked grant takes effect at once, whatever the replica's lag)."""
    return Scope(staff.merchant_id, settings, may_reveal_pii(primary, staff.id))


def audit_pii_read(
    primary: Session,
    staff: ConsoleStaff,
    scope: Scope,
    view: str,
    flt: OrderFilter,
    orders: list[str] | None = None,
) -> None:
    """Phones and names shown in clear are an access to personal data: audited, committed
    before anything is shown (who, from where, which view and filter, the orders listed).
    Masked values reveal nothing and are not recorded."""
    if not scope.reveal_pii:
        return
    details: dict[str, Any] = {"view": view, "filter": query_of(flt)}
    if orders is not None:
        details["orders"] = orders
    record(primary, staff.principal.actor, "pii.read", "merchant", staff.merchant_id,
           details=details)  # fmt: skip
    primary.commit()


def query_of(flt: OrderFilter, **changes: Any) -> str:
    """The list's query string for this filter (with `changes`), for links and exports."""
    from urllib.parse import urlencode

    values = {
        "tab": flt.tab.value if flt.tab else None,
        "campaign": flt.campaign_id,
        "station": flt.station_id,
        "from": flt.date_from.isoformat() if flt.date_from else None,
        "to": flt.date_to.isoformat() if flt.date_to else None,
        "q": flt.q,
    }
    values.update(changes)
    return urlencode({k: v for k, v in values.items() if v})


def _choices(session: Session, merchant_id: str) -> dict[str, Any]:
    campaigns = session.execute(
        select(Campaign.id, Campaign.title)
        .where(Campaign.merchant_id == merchant_id)
        .order_by(Campaign.starts_at.desc())
        .limit(100)
    ).all()
    stations = session.execute(select(Station.id, Station.name).order_by(Station.name).limit(300))
    return {"campaigns": campaigns, "stations": stations.all()}


@router.get("/console/orders", response_class=HTMLResponse)
def orders_page(
    request: Request,
    staff: StaffDep,
    db: ConsoleReadDep,
    primary: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The merchant's orders under the chosen tab and filters, newest first."""
    scope = scope_of(primary, staff, settings)
    result = list_orders(db, scope, flt, cursor=cursor)
    counts = tab_counts(db, scope, flt)
    audit_pii_read(primary, staff, scope, "orders", flt, [row.id for row in result.rows])
    return page(
        request,
        staff,
        "orders_list.html",
        {
            "flt": flt,
            "rows": result.rows,
            "next_cursor": result.next_cursor,
            "counts": counts,
            "total": sum(counts.values()),
            "tabs": TAB_LABELS,
            "query_of": query_of,
            "bulk_key": uuid.uuid4().hex,
            "revealed": scope.reveal_pii,
            "first_page": cursor is None,
            "tz": settings.station_timezone,
            **_choices(db, staff.merchant_id),
        },
        active="orders",
    )


@router.post("/console/orders/bulk", response_class=HTMLResponse)
def orders_bulk(
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    action: Annotated[bulk.BulkAction, Form()],
    key: Annotated[str, Form(min_length=8, max_length=64)],
    order_ids: Annotated[list[str], Form(max_length=bulk.MAX_ORDERS)],
    reason: Annotated[str | None, Form(max_length=400)] = None,
    back: Annotated[str | None, Form(max_length=500)] = None,
) -> HTMLResponse:
    """Accept or reject the chosen orders; the answer lists what happened to each one.
    Sending the same form again (a retry, a double click) answers the first result."""
    done = bulk.apply_once(
        session,
        key=key,
        merchant_id=staff.merchant_id,
        action=action,
        order_ids=order_ids,
        actor=staff.principal.actor,
        cipher=PiiCipher(settings),
        reason=(reason or "").strip() or None,
    )
    response = page(
        request,
        staff,
        "orders_bulk.html",
        {"done": done, "back": _back(back)},
        active="orders",
    )
    remember_write(response, session, settings)  # "Back to orders" (the replica) shows them
    return response


def _back(value: str | None) -> str:
    if value and value.startswith("/console/orders") and "\\" not in value:
        return value
    return "/console/orders"


def _name(settings: Settings, ext: str) -> str:
    today = utcnow().astimezone(ZoneInfo(settings.station_timezone)).date()
    return f"orders-{today.isoformat()}.{ext}"


def _download(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


@router.get("/console/orders.csv")
def orders_csv(
    staff: StaffDep,
    source: ConsoleReadSourceDep,
    primary: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
) -> StreamingResponse:
    """The filtered orders as CSV (UTF-8 with BOM), streamed as the rows are read."""
    scope = scope_of(primary, staff, settings)
    audit_pii_read(primary, staff, scope, "orders.csv", flt)

    def chunks() -> Iterator[bytes]:
        with source() as db:
            yield from export.csv_chunks(db, scope, flt)

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers=_download(_name(settings, "csv")),
    )


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/console/orders.xlsx")
def orders_xlsx(
    staff: StaffDep,
    source: ConsoleReadSourceDep,
    primary: SessionDep,
    settings: SettingsDep,
    flt: FilterDep,
) -> StreamingResponse:
    """The filtered orders as an XLSX workbook (written to a temporary file, then streamed)."""
    scope = scope_of(primary, staff, settings)
    audit_pii_read(primary, staff, scope, "orders.xlsx", flt)
    with source() as db:
        path = export.xlsx_file(db, scope, flt)
    return StreamingResponse(
        export.file_chunks(path), media_type=XLSX, headers=_download(_name(settings, "xlsx"))
    )
