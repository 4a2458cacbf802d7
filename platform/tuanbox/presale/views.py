"""Pre-sale API: the purchase order of a closed pre-sale campaign, as JSON or CSV."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from tuanbox.accounts.deps import Staff
from tuanbox.api.deps import SessionDep
from tuanbox.db.base import utcnow
from tuanbox.errors import PermissionDeniedError
from tuanbox.presale.services import PurchaseOrder, purchase_order, to_csv

router = APIRouter(prefix="/api/v1", tags=["pre-sale"])


def _po_for(campaign_id: str, user: Any, session: Any) -> PurchaseOrder:
    po = purchase_order(session, campaign_id, now=utcnow())
    if user.role != "admin" and user.merchant_id != po.merchant_id:
        raise PermissionDeniedError("only the campaign's merchant sees its purchase order")
    return po


@router.get("/campaigns/{campaign_id}/purchase-order")
def get_purchase_order(campaign_id: str, user: Staff, session: SessionDep) -> dict[str, Any]:
    """Total demand per SKU and lot of a closed pre-sale campaign (409 while it runs)."""
    po = _po_for(campaign_id, user, session)
    return {**asdict(po), "total_qty": po.total_qty}


@router.get("/campaigns/{campaign_id}/purchase-order.csv", response_class=Response)
def get_purchase_order_csv(campaign_id: str, user: Staff, session: SessionDep) -> Response:
    """The same purchase order as a CSV download for the supplier."""
    po = _po_for(campaign_id, user, session)
    return Response(
        to_csv(po),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="po-{po.campaign_id}.csv"'},
    )
