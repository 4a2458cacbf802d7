"""Trace API and pages: lot reports, merchants' event capture, the GS1 Digital Link resolver
(JSON or the consumer page by Accept), and the product QR code."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.openapi.models import Example
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy import select

from traceability.report import TraceReport
from traceability.settings import TraceSettings, get_settings
from tuanbox.accounts.deps import Staff
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import file_response, problems
from tuanbox.api.security import allow_sources
from tuanbox.catalog.models import Lot, Product
from tuanbox.errors import NotFoundError, PermissionDeniedError
from tuanbox.trace import page, services
from tuanbox.trace.errors import LotNotFoundError

router = APIRouter(tags=["trace"])
_templates: Jinja2Templates | None = None
HERE = Path(__file__).parent
# The page's script is a file, not inline, so the page's CSP allows our own scripts only.
_STATIC = {"trace.js": "text/javascript"}


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


@router.get("/01/{gtin}/10/{lot}", include_in_schema=False, response_model=None)
def digital_link(
    gtin: str,
    lot: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    trace: TraceSettingsDep,
) -> Response:
    """GS1 Digital Link resolver: the consumer page for browsers, the report JSON otherwise."""
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
