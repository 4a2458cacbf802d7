"""Payments API: checkout, the provider webhook, refunds; SimPay's hosted payment page."""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tuanbox.accounts.deps import CurrentUser, OpsOrAdmin, Shopper
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import record
from tuanbox.bounds import MAX_INT32, AmountCents
from tuanbox.idempotency.deps import Idempotent
from tuanbox.orders.views import visible_order
from tuanbox.payments import services
from tuanbox.payments.errors import UnknownIntentError
from tuanbox.payments.models import PaymentIntent, Refund
from tuanbox.payments.provider import get_provider
from tuanbox.payments.simpay import SimPay

log = logging.getLogger("tuanbox.payments")
router = APIRouter(tags=["payments"])


class IntentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    provider: str
    amount_cents: int
    status: str
    checkout_url: str


class RefundIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"amount_cents": 500, "reason": "box arrived crushed"}]}
    )

    amount_cents: AmountCents
    reason: str = Field(min_length=3, max_length=200)


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    amount_cents: int
    reason: str
    status: str
    attempts: int


class CheckoutIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"provider": "sim"}]})

    provider: Annotated[str, Field(pattern=r"^[a-z]{2,20}$")] = "sim"


@router.post(
    "/api/v1/orders/{order_id}/payments",
    status_code=201,
    response_model=IntentOut,
    responses=problems(401, 403, 404, 409, 422),
)
def checkout(
    order_id: str,
    body: CheckoutIn,
    user: Shopper,
    session: SessionDep,
    settings: SettingsDep,
    idem: Idempotent,
) -> JSONResponse:
    """Start paying an order: returns the provider's hosted payment page."""
    order = visible_order(session, order_id, user)

    def work() -> tuple[int, object]:
        intent = services.start_checkout(session, order, get_provider(body.provider, settings))
        return 201, IntentOut.model_validate(intent).model_dump(mode="json")

    return idem.respond(session, user.id, {"order": order_id, **body.model_dump()}, work)


# The body is read raw (its HMAC is over the exact bytes), so it is documented by hand.
_WEBHOOK_DOC: dict[str, Any] = {
    "parameters": [
        {
            "name": "X-SimPay-Signature",
            "in": "header",
            "required": True,
            "description": "`t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.' + body>` (SimPay)",
            "schema": {"type": "string"},
            "example": "t=1764460800,v1=5d41402abc4b2a76b9719d911017c592…",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["type", "data"],
                    "properties": {
                        "type": {"type": "string"},
                        "data": {"type": "object"},
                    },
                },
                "examples": {
                    "payment": {
                        "summary": "A payment succeeded",
                        "value": {
                            "type": "payment.succeeded",
                            "data": {
                                "intent_id": "pi_7b2e…",
                                "txn_id": "sim_txn_0001",
                                "amount_cents": 5400,
                            },
                        },
                    },
                    "refund": {
                        "summary": "A refund succeeded",
                        "value": {
                            "type": "refund.succeeded",
                            "data": {
                                "intent_id": "pi_7b2e…",
                                "refund_id": "rf_91c0…",
                                "provider_refund_id": "sim_rf_0001",
                                "amount_cents": 600,
                            },
                        },
                    },
                },
            }
        },
    },
}


class WebhookOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "applied"}]})

    status: str = Field(description="applied, duplicate, refunding or ignored")


@router.post(
    "/api/v1/payments/{provider}/webhook",
    response_model=WebhookOut,
    responses=problems(401, 404, 422),
    openapi_extra=_WEBHOOK_DOC,
)
async def webhook(
    provider: str, request: Request, session: SessionDep, settings: SettingsDep
) -> dict[str, str]:
    """The provider's signed notification (payment or refund succeeded). Public, but signed."""
    body = await request.body()
    event = get_provider(provider, settings).verify_webhook(dict(request.headers), body)
    outcome = services.handle_event(session, event)
    session.commit()
    return {"status": outcome}


@router.get("/api/v1/refunds", response_model=list[RefundOut])
def refunds_by_status(
    user: OpsOrAdmin,
    session: SessionDep,
    status: Annotated[str, Query(pattern="^(pending|succeeded|failed)$")] = "pending",
    min_attempts: Annotated[int, Query(ge=0, le=MAX_INT32)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Refund]:
    """Ops: refunds by status, e.g. pending ones the provider keeps refusing (oldest first)."""
    return list(
        session.scalars(
            select(Refund)
            .where(Refund.status == status, Refund.attempts >= min_attempts)
            .order_by(Refund.created_at)
            .limit(limit)
        )
    )


@router.get(
    "/api/v1/orders/{order_id}/refunds",
    response_model=list[RefundOut],
    responses=problems(401, 404),
)
def list_refunds(order_id: str, user: CurrentUser, session: SessionDep) -> list[Refund]:
    """An order's refunds (automatic and manual), oldest first."""
    visible_order(session, order_id, user)
    return list(
        session.scalars(
            select(Refund).where(Refund.order_id == order_id).order_by(Refund.created_at)
        )
    )


@router.post(
    "/api/v1/orders/{order_id}/refunds",
    status_code=201,
    response_model=RefundOut,
    responses=problems(401, 403, 404, 409, 422),
)
def manual_refund(
    order_id: str, body: RefundIn, user: OpsOrAdmin, session: SessionDep, idem: Idempotent
) -> JSONResponse:
    """Ops: refund part or all of an order (goodwill, damage); audited, never above paid."""
    order = visible_order(session, order_id, user)

    def work() -> tuple[int, object]:
        key = f"manual:{order_id}:{idem.key}" if idem.key else f"manual:{order_id}:{body.reason}"
        row = services.refund(session, order, body.amount_cents, body.reason, key)
        record(
            session,
            user.actor,
            "order.refund",
            "order",
            order_id,
            reason=body.reason,
            details={"amount_cents": body.amount_cents, "refund_id": row.id},
        )
        return 201, RefundOut.model_validate(row).model_dump(mode="json")

    return idem.respond(session, user.id, body.model_dump(), work)


# -- SimPay's hosted payment page (plays the gateway's website) ----------------------------

_PAGE = """<!doctype html><html lang="zh"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SimPay</title><body style="font-family:sans-serif;max-width:28em;margin:2em auto">
<h1>SimPay 模拟支付</h1><p>Order {order}</p><p style="font-size:2em">¥{amount}</p>
<form method="post" action="/pay/sim/{intent}/confirm"><button type="submit"
 style="font-size:1.2em;padding:.5em 2em">Pay / 支付</button></form></body></html>"""


def _sim_intent(session: SessionDep, intent_id: str) -> PaymentIntent:
    intent = session.get(PaymentIntent, intent_id)
    if intent is None or intent.provider != "sim":
        raise UnknownIntentError("no such payment")
    return intent


@router.get("/pay/sim/{intent_id}", response_class=HTMLResponse, include_in_schema=False)
def sim_page(intent_id: str, session: SessionDep) -> str:
    intent = _sim_intent(session, intent_id)
    return _PAGE.format(
        order=html.escape(intent.order_id),
        amount=f"{intent.amount_cents // 100}.{intent.amount_cents % 100:02d}",
        intent=html.escape(intent.id),
    )


@router.post("/pay/sim/{intent_id}/confirm", response_class=HTMLResponse, include_in_schema=False)
def sim_confirm(
    intent_id: str, session: SessionDep, settings: SettingsDep, background: BackgroundTasks
) -> str:
    """The shopper pays on the gateway; the gateway then notifies us by signed webhook."""
    intent = _sim_intent(session, intent_id)
    gateway = SimPay(settings)
    charge = gateway.charge(session, intent.id, intent.amount_cents)
    body, headers = gateway.payment_webhook(charge)
    if settings.simpay_webhook_url:
        background.add_task(_deliver, settings.simpay_webhook_url, body, headers)
    else:
        # No public URL configured (tests, the demo): deliver through the same verify +
        # apply path the HTTP endpoint uses, minus the network hop.
        event = gateway.verify_webhook(headers, body)
        services.handle_event(session, event)
    session.commit()
    return "<!doctype html><meta charset='utf-8'><p>Payment received. 支付成功。</p>"


def _deliver(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST the webhook like a gateway would, retrying a few times on failure."""
    for attempt in range(1, 4):
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=5.0)
        except httpx.HTTPError as exc:
            log.warning("simpay webhook attempt %d failed: %s", attempt, exc)
            continue
        if response.status_code < 500:
            return
        log.warning("simpay webhook attempt %d got %d", attempt, response.status_code)
    log.error("simpay webhook not delivered to %s; the shopper's payment awaits a resend", url)
