"""A lot (batch) of the merchant's: recorded from its product's page, then its provenance
events, its product QR and label sheet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.bounds import MAX_STOCK
from tuanbox.catalog import services
from tuanbox.catalog.models import Lot, Product
from tuanbox.console import labels
from tuanbox.console.auth import ConsoleStaff, StaffDep
from tuanbox.console.forms import Problems
from tuanbox.console.i18n import gettext_for, locale_of
from tuanbox.console.products import Text200, detail_page, owned_product, request_gettext
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


STEPS = ("commissioning", "shipping", "receiving")
Short = Annotated[str, Form(max_length=40)]


def _lot_page(
    request: Request,
    staff: ConsoleStaff,
    session: Session,
    settings: Settings,
    row: Lot,
    product: Product,
    *,
    problems: list[str] | None = None,
    form: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    from tuanbox.shop.qr import svg

    url = resolver_url(settings, row)
    _ = gettext_for(locale_of(request))
    context = {
        "lot": row,
        "product": product,
        "events": _events(session, row, locale_of(request)),
        "qr": svg(url),
        "resolver": url,
        "base": f"/console/lots/{row.gtin}/{row.lot_code}",
        "per_sheet": labels.COLUMNS * labels.ROWS,
        "max_labels": labels.MAX_LABELS,
        "problems": problems or [],
        "form": form or {"step": "commissioning", "uom": "KGM"},
        "notice": _("The step was recorded.") if request.query_params.get("done") else None,
        "steps": STEPS,
    }
    return page(request, staff, "lot.html", context, active="products", status_code=status)


@router.get("/console/lots/{gtin}/{lot}", response_class=HTMLResponse)
def lot_page(
    gtin: str,
    lot: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    row, product = owned_lot(session, staff, gtin, lot)
    return _lot_page(request, staff, session, settings, row, product)


@router.post("/console/lots/{gtin}/{lot}/events", response_model=None)
def record_step(
    gtin: str,
    lot: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    step: Short = "",
    at: Short = "",
    place: Short = "",
    other: Short = "",
    quantity: Short = "",
    uom: Short = "",
) -> HTMLResponse | RedirectResponse:
    """One provenance step of the lot as an EPCIS event (traceability.journey builds it; the
    trace feature stores, hashes and later anchors it like any event from the API)."""
    from traceability.errors import TraceError
    from traceability.identifiers import normalize_gtin, validate_gln
    from traceability.journey import Batch, commissioning, receiving, shipping
    from tuanbox.trace.services import record_event

    row, product = owned_lot(session, staff, gtin, lot)
    _ = gettext_for(locale_of(request))
    problems = Problems(_)
    form = {
        "step": step,
        "at": at,
        "place": place,
        "other": other,
        "quantity": quantity,
        "uom": uom,
    }
    if step not in STEPS:
        problems.add(_("Step: choose harvest, shipping or receiving."))
    when = problems.when(at, _("When"), settings.station_timezone)
    glns: dict[str, str] = {}
    for name, value, label, needed in (
        ("place", place, _("Place (GLN)"), True),
        ("other", other, _("Destination or origin (GLN)"), step == "shipping"),
    ):
        if not value.strip():
            if needed:
                problems.add(_("%(field)s: please enter the 13-digit GLN.") % {"field": label})
            continue
        try:
            glns[name] = validate_gln(value.strip())
        except TraceError:
            problems.add(
                _("%(field)s: %(gln)s is not a GLN (13 digits with the right check digit).")
                % {"field": label, "gln": value.strip()}
            )
    amount = problems.whole(
        quantity, _("Quantity"), 1, 10_000_000, required=step == "commissioning"
    )
    if uom not in ("KGM", "H87"):
        uom = "H87"
    if problems or when is None:
        return _lot_page(
            request,
            staff,
            session,
            settings,
            row,
            product,
            problems=problems.items,
            form=form,
            status=422,
        )
    local = when.astimezone(ZoneInfo(settings.station_timezone))
    batch = Batch(normalize_gtin(row.gtin), row.lot_code)
    if step == "commissioning":
        harvested = (row.harvested_at or when).date()
        event = commissioning(
            batch,
            when=local,
            farm_gln=glns["place"],
            quantity=amount or 0,
            uom=uom,
            harvest_start=harvested,
            harvest_end=local.date(),
            farm_name=row.farm or product.name,
        )
    elif step == "shipping":
        event = shipping(batch, when=local, from_gln=glns["place"], to_gln=glns["other"])
    else:
        event = receiving(
            batch,
            when=local,
            at_gln=glns["place"],
            from_gln=glns.get("other"),
            quantity=amount,
            uom=uom,
        )
    record_event(session, event.to_jsonld(), merchant_id=staff.merchant_id)
    session.commit()
    return RedirectResponse(
        f"/console/lots/{row.gtin}/{row.lot_code}?done=1#provenance", status_code=303
    )


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


@router.post("/console/products/{product_id}/lots", response_model=None)
def add_lot(
    product_id: str,
    request: Request,
    staff: StaffDep,
    session: SessionDep,
    settings: SettingsDep,
    lot_code: Short = "",
    harvested_at: Short = "",
    best_before: Short = "",
    farm: Text200 = "",
    origin: Text200 = "",
    quantity: Short = "",
) -> HTMLResponse | RedirectResponse:
    from traceability.errors import IdentifierError
    from traceability.identifiers import validate_lot
    from tuanbox.catalog.errors import DuplicateLotError

    product = owned_product(session, staff, product_id)
    _ = request_gettext(request)
    problems = Problems(_)
    code = lot_code.strip()
    try:
        validate_lot(code)
    except IdentifierError:
        problems.add(_("Lot code: 1 to 20 letters, digits, dots, dashes or underscores."))
    if product.gtin is None:
        problems.add(_("Lots need the product's GTIN: this product has none."))
    harvested = (
        problems.when(harvested_at, _("Harvested"), settings.station_timezone)
        if harvested_at.strip()
        else None
    )
    best = (
        problems.when(best_before, _("Best before"), settings.station_timezone)
        if best_before.strip()
        else None
    )
    if harvested and best and best <= harvested:
        problems.add(_("Best before: must be after the harvest."))
    units = problems.whole(quantity, _("Quantity"), 1, MAX_STOCK, required=False)
    form = {
        "lot_code": lot_code,
        "harvested_at": harvested_at,
        "best_before": best_before,
        "farm": farm,
        "origin": origin,
        "quantity": quantity,
    }
    if not problems:
        try:
            services.add_lot(
                session,
                staff.principal.actor,
                product.id,
                lot_code=code,
                harvested_at=harvested,
                best_before=best,
                farm=farm.strip() or None,
                origin=origin.strip() or None,
                quantity=units,
            )
        except DuplicateLotError:
            problems.add(_("Lot code: %(lot)s is already recorded for this GTIN.") % {"lot": code})
        else:
            session.commit()
            return RedirectResponse(
                f"/console/products/{product.id}?done=lot#lots", status_code=303
            )
    return detail_page(
        request, staff, session, product, status=422, problems=problems.items, form=form
    )
