"""Pre-sale API: the purchase order of a closed campaign (JSON, CSV); its receipt at a hub."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tuanbox.accounts.deps import OpsOrAdmin, Staff
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import file_response, problems
from tuanbox.db.base import utcnow
from tuanbox.errors import PermissionDeniedError
from tuanbox.groupbuy.services import get_campaign
from tuanbox.presale import receiving
from tuanbox.presale.services import PurchaseOrder, purchase_order, to_csv
from tuanbox.trace.views import TraceSettingsDep

router = APIRouter(prefix="/api/v1", tags=["pre-sale"])


def _po_for(campaign_id: str, user: Any, session: Any) -> PurchaseOrder:
    # Whose campaign it is, before anything about its state: another merchant's staff learn
    # nothing (not even whether it is a pre-sale, or still running).
    campaign = get_campaign(session, campaign_id)
    if user.role != "admin" and not user.staff_of(campaign.merchant_id):
        raise PermissionDeniedError("only the campaign's merchant sees its purchase order")
    return purchase_order(session, campaign_id, now=utcnow())


@router.get("/campaigns/{campaign_id}/purchase-order", responses=problems(401, 403, 404, 409))
def get_purchase_order(campaign_id: str, user: Staff, session: SessionDep) -> dict[str, Any]:
    """Total demand per SKU and lot of a closed pre-sale campaign (409 while it runs)."""
    po = _po_for(campaign_id, user, session)
    return {**asdict(po), "total_qty": po.total_qty}


@router.get(
    "/campaigns/{campaign_id}/purchase-order.csv",
    response_class=Response,
    responses={
        200: file_response("The purchase order, one line per SKU and lot", "text/csv"),
        **problems(401, 403, 404, 409),
    },
)
def get_purchase_order_csv(campaign_id: str, user: Staff, session: SessionDep) -> Response:
    """The same purchase order as a CSV download for the supplier."""
    po = _po_for(campaign_id, user, session)
    return Response(
        to_csv(po),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="po-{po.campaign_id}.csv"'},
    )


class ReceiptIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"station_id": "st-001", "qty": 120, "from_gln": "6901234000016"}]
        }
    )

    station_id: str = Field(min_length=1, max_length=36)
    qty: int = Field(ge=1, le=1_000_000_000, description="Units counted in at the hub")
    from_gln: str | None = Field(
        default=None, pattern=r"^\d{13}$", description="GLN of the place it was shipped from"
    )


class ReceiptOut(BaseModel):
    id: str
    campaign_id: str
    station_id: str
    qty: int
    received_at: datetime
    received_by: str
    trace_event_id: str
    event_hash: str
    confirmed_order_ids: list[str]
    replayed: bool


@router.post(
    "/campaigns/{campaign_id}/receipts",
    status_code=201,
    response_model=ReceiptOut,
    responses={200: {"model": ReceiptOut}, **problems(401, 403, 404, 409, 422)},
)
def receive_batch(
    campaign_id: str,
    body: ReceiptIn,
    user: OpsOrAdmin,
    session: SessionDep,
    settings: SettingsDep,
    trace: TraceSettingsDep,
) -> JSONResponse:
    """Hub staff (ops): the pre-sale batch arrived at a station; confirm its orders there.

    Records an EPCIS receiving event in the batch's provenance. Receiving the same campaign
    at the same station again answers the first receipt (200) and records nothing new.
    """
    got = receiving.receive(
        session,
        campaign_id,
        station_id=body.station_id,
        qty=body.qty,
        from_gln=body.from_gln,
        actor=user.actor,
        settings=settings,
        trace=trace,
        now=utcnow(),
    )
    session.commit()
    r = got.receipt
    out = ReceiptOut(
        id=r.id,
        campaign_id=r.campaign_id,
        station_id=r.station_id,
        qty=r.qty,
        received_at=r.received_at,
        received_by=r.received_by,
        trace_event_id=r.trace_event_id,
        event_hash=got.event_hash,
        confirmed_order_ids=got.confirmed,
        replayed=got.replayed,
    )
    return JSONResponse(out.model_dump(mode="json"), status_code=200 if got.replayed else 201)
