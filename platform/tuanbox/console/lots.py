"""A lot (batch) of the merchant's: its provenance events, its product QR and label sheet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.catalog.models import Lot, Product
from tuanbox.console import labels
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.i18n import locale_of
from tuanbox.console.render import page
from tuanbox.errors import NotFoundError
from tuanbox.settings import Settings

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class EventRow:
    when: str
    step: str
    kind: str
    place: str
    details: list[str]
    short_hash: str
    corrected: bool


def owned_lot(session: Session, staff: ConsoleStaff, gtin: str, lot: str) -> tuple[Lot, Product]:
    """The merchant's lot by GTIN (as recorded, or its 14-digit form) and lot code."""
    if len(gtin) > 14 or len(lot) > 20:
        raise NotFoundError("no such lot")
    row = session.execute(
        select(Lot, Product)
        .join(Product, Product.id == Lot.product_id)
        .where(
            Lot.lot_code == lot,
            Lot.gtin.in_({gtin, gtin.lstrip("0"), gtin.zfill(14)}),
            Product.merchant_id == staff.merchant_id,
        )
    ).first()
    if row is None:
        raise NotFoundError("no such lot")
    return row[0], row[1]


def resolver_url(settings: Settings, lot: Lot) -> str:
    """What the product QR encodes: our GS1 Digital Link resolver for this lot."""
    from traceability.identifiers import normalize_gtin

    return f"{settings.public_base_url.rstrip('/')}/01/{normalize_gtin(lot.gtin)}/10/{lot.lot_code}"


def _events(session: Session, lot: Lot, locale: str) -> list[EventRow]:
    from traceability.identifiers import normalize_gtin
    from tuanbox.trace import page as trace_page
    from tuanbox.trace.services import lot_events

    rows = []
    for event in lot_events(session, normalize_gtin(lot.gtin), lot.lot_code):
        body = event.body
        name = trace_page._step_name(body)
        zh, en = trace_page.STEP_LABELS.get(name, (name, name.replace("_", " ")))
        rows.append(
            EventRow(
                when=event.event_time.strftime("%Y-%m-%d %H:%M"),
                step=zh if locale == "zh" else en,
                kind=event.event_type,
                place=trace_page._place(body),
                details=trace_page._details(body),
                short_hash=event.event_hash.split(";")[-1][:12],
                corrected="errorDeclaration" in body,
            )
        )
    return rows


@router.get("/console/lots/{gtin}/{lot}", response_class=HTMLResponse)
def lot_page(
    gtin: str,
    lot: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    from tuanbox.shop.qr import svg

    row, product = owned_lot(session, staff, gtin, lot)
    url = resolver_url(settings, row)
    context = {
        "lot": row,
        "product": product,
        "events": _events(session, row, locale_of(request)),
        "qr": svg(url),
        "resolver": url,
        "base": f"/console/lots/{row.gtin}/{row.lot_code}",
        "per_sheet": labels.COLUMNS * labels.ROWS,
        "max_labels": labels.MAX_LABELS,
    }
    return page(request, staff, "lot.html", context, active="products")


@router.get("/console/lots/{gtin}/{lot}/qr.png")
def lot_qr(
    gtin: str, lot: str, staff: StaffDep, session: SessionDep, settings: SettingsDep
) -> Response:
    row, _product = owned_lot(session, staff, gtin, lot)
    return Response(
        labels.qr_png(resolver_url(settings, row)),
        media_type="image/png",
        headers={
            "Content-Disposition": f'inline; filename="{row.gtin}-{row.lot_code}.png"',
            "Cache-Control": "private, max-age=300",
        },
    )


@router.get("/console/lots/{gtin}/{lot}/labels.pdf")
def lot_labels(
    gtin: str,
    lot: str,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    count: Annotated[int, Query(ge=1, le=labels.MAX_LABELS)] = labels.COLUMNS * labels.ROWS,
) -> Response:
    """A print-ready A4 sheet (or several) of ``count`` labels with the product QR."""
    row, product = owned_lot(session, staff, gtin, lot)
    best = row.best_before.strftime("%Y-%m-%d") if row.best_before else ""
    label = labels.Label(
        url=resolver_url(settings, row),
        product=product.name,
        gtin=row.gtin,
        lot=row.lot_code,
        best_before=best,
    )
    return Response(
        labels.sheet_pdf(label, count),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="labels-{row.gtin}-{row.lot_code}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )
