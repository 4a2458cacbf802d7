"""Trace API and pages: lot reports, merchants' event capture, the GS1 Digital Link resolver
(``/01/{gtin}[/10/{lot}]``), the trace and product information pages, the product QR code."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from traceability.report import TraceReport
from traceability.settings import TraceSettings, get_settings
from tuanbox.accounts.deps import Staff
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import file_response, problems
from tuanbox.api.security import allow_sources
from tuanbox.catalog.models import Lot, Merchant, Product
from tuanbox.errors import NotFoundError, PermissionDeniedError
from tuanbox.settings import Settings
from tuanbox.trace import page, resolver, services
from tuanbox.trace.errors import LotNotFoundError
from tuanbox.trace.models import TraceEventLot

router = APIRouter(tags=["trace"])
_templates: Jinja2Templates | None = None
HERE = Path(__file__).parent
# The page's script is a file, not inline, so the page's CSP allows our own scripts only.
_STATIC = {"trace.js": "text/javascript", "epcis_hash.js": "text/javascript"}


def templates() -> Jinja2Templates:
    """Built on first use, not at import."""
    global _templates
    if _templates is None:
        _templates = Jinja2Templates(directory=str(HERE / "templates"))
    return _templates


def get_trace_settings(request: Request) -> TraceSettings:
    """TRACE_* settings: the app's own (tests set ``app.state.trace_settings``) or the env's."""
    configured = getattr(request.app.state, "trace_settings", None)
    return configured if isinstance(configured, TraceSettings) else get_settings()


TraceSettingsDep = Annotated[TraceSettings, Depends(get_trace_settings)]


class RecordedEvent(BaseModel):
    id: str
    event_hash: str
    status: Literal["pending"] = "pending"
    lots: list[str]


EVENT_EXAMPLES: dict[str, Example] = {
    "harvest": {
        "summary": "A lot observed at harvest (EPCIS 2.0 ObjectEvent)",
        "value": {
            "type": "ObjectEvent",
            "eventTime": "2026-11-28T06:00:00+08:00",
            "eventTimeZoneOffset": "+08:00",
            "action": "OBSERVE",
            "bizStep": "commissioning",
            "quantityList": [{"epcClass": "https://id.gs1.org/01/06901234567892/10/PEACH-2611"}],
        },
    }
}


def _rpc(trace: TraceSettings) -> str:
    return trace.public_rpc_url or trace.rpc_url


@router.get("/api/v1/trace/{gtin}/{lot}", response_model=TraceReport, responses=problems(404))
def trace_report(gtin: str, lot: str, session: SessionDep, trace: TraceSettingsDep) -> TraceReport:
    """A lot's trace report: events, hashes, Merkle proofs, anchors; pending events marked."""
    return services.report_for(session, gtin, lot, rpc_url=_rpc(trace))


@router.post(
    "/api/v1/trace/events",
    response_model=RecordedEvent,
    status_code=201,
    responses=problems(401, 403, 404, 422),
)
def record_event(
    body: Annotated[dict[str, Any], Body(openapi_examples=EVENT_EXAMPLES)],
    user: Staff,
    session: SessionDep,
    response: Response,
) -> RecordedEvent:
    """Add one EPCIS 2.0 event (JSON-LD) about the merchant's own lots; 422 names the field."""
    recorded = services.record_event(
        session, body, merchant_id=user.merchant_id, is_admin=user.role == "admin"
    )
    session.commit()
    if not recorded.created:
        response.status_code = 200
    lots = sorted(f"{g}/{lot}" for g, lot in services.lots_in(recorded.event.body))
    return RecordedEvent(id=recorded.event.id, event_hash=recorded.event.event_hash, lots=lots)


@router.get("/trace/lot/{gtin}/{lot}", include_in_schema=False, response_model=None)
def trace_page(
    gtin: str,
    lot: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    trace: TraceSettingsDep,
) -> Response:
    """The lot's trace page for browsers, the report JSON otherwise (gs1:traceability)."""
    report = services.report_for(session, gtin, lot, rpc_url=_rpc(trace))
    if "text/html" not in request.headers.get("accept", ""):
        return JSONResponse(report.model_dump(mode="json"), headers={"Vary": "Accept"})
    if report.rpc_url:
        # The page's own chain check; an RPC URL that is no http(s) origin stays refused by
        # the CSP, and the page then says the chain was not reachable.
        with contextlib.suppress(ValueError):
            allow_sources(request, "connect-src", report.rpc_url)
    product_name = session.scalar(
        select(Product.name)
        .join(Lot, Lot.product_id == Product.id)
        .where(Lot.gtin == report.gtin, Lot.lot_code == report.lot)
    )
    return templates().TemplateResponse(
        request,
        "trace.html",
        {
            "report": report,
            "product_name": product_name or report.digital_link,
            "merchant": services.merchant_of_lot(session, report.gtin, report.lot),
            "steps": page.timeline(report),
            "cold": page.cold_chain(report),
            "rpc_url": report.rpc_url,
            "selector": page.ANCHORED_AT_SELECTOR,
            "report_json": page.embedded_json(report),
            "json_url": f"/api/v1/trace/{report.gtin}/{report.lot}",
        },
        headers={"Cache-Control": "no-store", "Vary": "Accept"},
    )


@router.get("/01/{gtin}/10/{lot}", include_in_schema=False, response_model=None)
def digital_link_lot(
    gtin: str, lot: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """GS1 Digital Link resolver for a batch: 307 to the requested link type (default: the
    trace page), or the linkset for ``linkType=all``; 400 for a malformed identifier."""
    return _resolve(request, session, settings, resolver.gtin14(gtin), resolver.lot_ai10(lot))


@router.get("/01/{gtin}", include_in_schema=False, response_model=None)
def digital_link_product(
    gtin: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """GS1 Digital Link resolver for a product: default link its product information page."""
    return _resolve(request, session, settings, resolver.gtin14(gtin), None)


def _resolve(
    request: Request, session: Session, settings: Settings, gtin: str, lot: str | None
) -> Response:
    product_name = _product_name(session, gtin, lot)
    default, links = resolver.links_for(settings.public_base_url, gtin, lot, product_name)
    anchor = settings.public_base_url.rstrip("/") + resolver.dl_path(gtin, lot)
    headers = {
        "Link": resolver.link_header(anchor, default, links),
        "Vary": "Accept",
        "Cache-Control": "no-store",
    }
    requested = request.query_params.get("linkType")
    wanted = resolver.link_type(requested) if requested is not None else None
    accept = request.headers.get("accept", "")
    if wanted in ("all", "linkset") or (requested is None and resolver.LINKSET_TYPE in accept):
        return JSONResponse(
            resolver.linkset(anchor, default, links),
            media_type=resolver.LINKSET_TYPE,
            headers=headers,
        )
    target = default if wanted is None else links.get(wanted, default)
    note = "redirecting to the default link"
    if requested is not None and (wanted is None or wanted not in links):
        # The resolver standard: an unavailable link type falls back to the default link.
        note = f"no link of type {requested[:100]!r} for this item; redirecting to the default"
    # Other query parameters go on to the target, as the standard asks; linkType does not.
    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "linkType"])
    location = urlsplit(target.href).path + (f"?{rest}" if rest else "")
    return PlainTextResponse(
        f"{note}: {target.href}\n", status_code=307, headers={**headers, "Location": location}
    )


def _product_name(session: Session, gtin: str, lot: str | None) -> str:
    """The product's name; 404 when our catalog and trace events know neither the item."""
    name = session.scalar(select(Product.name).where(Product.gtin == gtin).limit(1))
    if lot is None:
        lot_name = session.scalar(
            select(Product.name).join(Lot, Lot.product_id == Product.id).where(Lot.gtin == gtin)
        )
        if name is None and lot_name is None:
            raise resolver.ProductNotFoundError(f"no product {gtin}", gtin=gtin)
        return name or lot_name or gtin
    lot_name = session.scalar(
        select(Product.name)
        .join(Lot, Lot.product_id == Product.id)
        .where(Lot.gtin == gtin, Lot.lot_code == lot)
    )
    if lot_name is None:
        traced = session.scalar(
            select(TraceEventLot.event_id)
            .where(TraceEventLot.gtin == gtin, TraceEventLot.lot_code == lot)
            .limit(1)
        )
        if traced is None:
            raise LotNotFoundError(f"no lot {gtin}/{lot}", gtin=gtin, lot=lot)
    return lot_name or name or gtin


@router.get("/product/{gtin}", include_in_schema=False, response_model=None)
def product_page(gtin: str, request: Request, session: SessionDep) -> Response:
    """Product information page (gs1:pip): the product, its merchant, its traced lots."""
    gtin = resolver.gtin14(gtin)
    product = session.scalar(select(Product).where(Product.gtin == gtin).limit(1))
    lots = list(
        session.scalars(
            select(Lot).where(Lot.gtin == gtin).order_by(Lot.created_at.desc()).limit(20)
        )
    )
    if product is None and lots:
        product = session.get(Product, lots[0].product_id)
    if product is None:
        raise resolver.ProductNotFoundError(f"no product {gtin}", gtin=gtin)
    merchant = session.get(Merchant, product.merchant_id)
    return templates().TemplateResponse(
        request,
        "product.html",
        {"product": product, "gtin": gtin, "merchant": merchant, "lots": lots},
        headers={"Cache-Control": "no-store"},
    )


@router.get(
    "/api/v1/trace/{gtin}/{lot}/qr.{fmt}",
    response_model=None,
    response_class=Response,
    responses={
        200: file_response("The product QR", "image/png", "image/svg+xml"),
        **problems(401, 403, 404),
    },
)
def product_qr(
    gtin: str,
    lot: str,
    fmt: Literal["png", "svg"],
    user: Staff,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """The product QR (our Digital Link resolver URL) for printing on the pack (merchant)."""
    import segno

    gtin, lot = services.lot_key(gtin, lot)
    merchant = services.merchant_of_lot(session, gtin, lot)
    if merchant is None:
        raise LotNotFoundError(f"lot {gtin}/{lot} is not in the catalog", gtin=gtin, lot=lot)
    if user.role != "admin" and merchant.id != user.merchant_id:
        raise PermissionDeniedError("this lot belongs to another merchant")
    url = f"{settings.public_base_url.rstrip('/')}/01/{gtin}/10/{lot}"
    qr = segno.make(url, error="m")
    buffer = io.BytesIO()
    if fmt == "png":
        qr.save(buffer, kind="png", scale=8, border=4)
        media = "image/png"
    else:
        qr.save(buffer, kind="svg", scale=8, border=4, xmldecl=False)
        media = "image/svg+xml"
    return Response(
        buffer.getvalue(),
        media_type=media,
        headers={"Content-Disposition": f'inline; filename="{gtin}-{lot}.{fmt}"'},
    )


@router.get("/trace/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in _STATIC:
        raise NotFoundError(f"no static file {name}")
    body = (HERE / "static" / name).read_text(encoding="utf-8")
    return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})
