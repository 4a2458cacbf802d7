"""Payments API: checkout, the provider webhooks, refunds and ops' way out of failed ones."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from tuanbox.accounts.deps import CurrentUser, OpsOrAdmin, Shopper
from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.api.openapi_problems import problems
from tuanbox.audit.services import record
from tuanbox.bounds import MAX_INT32, AmountCents
from tuanbox.idempotency.deps import Idempotent
from tuanbox.orders.services import lock_order
from tuanbox.orders.views import visible_order
from tuanbox.payments import resolution, services
from tuanbox.payments.models import Refund
from tuanbox.payments.provider import get_provider
from tuanbox.ratelimit.deps import client_ip
from tuanbox.risk.deps import RiskGateDep

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
    last_error: str | None = None
    resolution_note: str | None = None


class CheckoutIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"provider": "wechat"}, {}]})

    # None: the first of TUANBOX_PAYMENT_PROVIDERS.
    provider: Annotated[str | None, Field(pattern=r"^[a-z]{2,20}$")] = None


@router.post(
    "/api/v1/orders/{order_id}/payments",
    status_code=201,
    response_model=IntentOut,
    responses=problems(401, 403, 404, 409, 422),
)
def checkout(
    order_id: str,
    body: CheckoutIn,
    request: Request,
    user: Shopper,
    session: SessionDep,
    settings: SettingsDep,
    idem: Idempotent,
    risk: RiskGateDep,
) -> JSONResponse:
    """Start paying an order: returns the provider's hosted payment page.

    Risk control screens each checkout (a flash-sale order's first one is where it sees the
    order): 403 `RISK_BLOCKED` cancels the order; a held order may be paid but is confirmed
    only once ops approve it (`awaiting: review`)."""
    order = visible_order(session, order_id, user)
    provider = get_provider(body.provider or settings.default_payment_provider, settings)
    risk.at_checkout(session, order)
    # The shopper's address (a trusted proxy's X-Forwarded-For; see client_ip).
    payer_ip = client_ip(request) if request.client else None

    def work() -> tuple[int, object]:
        intent = services.start_checkout(session, order, provider, payer_ip=payer_ip)
        return 201, IntentOut.model_validate(intent).model_dump(mode="json")

    request_key = {"order": order_id, "provider": provider.name}
    return idem.respond(session, user.id, request_key, work)


def _header(name: str, description: str, example: str) -> dict[str, Any]:
    schema = {"type": "string", "maxLength": 1024}
    return {"name": name, "in": "header", "required": False, "description": description,
            "schema": schema, "example": example}  # fmt: skip


# The body is read raw (its signature is over the exact bytes), so it is documented by hand.
_WEBHOOK_DOC: dict[str, Any] = {
    "parameters": [
        _header(
            "X-SimPay-Signature",
            "sim: `t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.' + body>`",
            "t=1764460800,v1=5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592",
        ),
        _header(
            "Wechatpay-Signature",
            "wechat: base64 RSA-SHA256 over `<timestamp>\\n<nonce>\\n<body>\\n` by the "
            "platform certificate named in Wechatpay-Serial; the body's `resource` is "
            "AES-256-GCM encrypted with the APIv3 key",
            "g9QHJx1nCUcRK3qTzSPrIc8GpY6Yb0WkVt0ZpW3oWkKc1mAqfo4rQqQ==",
        ),
        _header("Wechatpay-Timestamp", "wechat: unix time, within 5 minutes", "1764460800"),
        _header("Wechatpay-Nonce", "wechat: random string", "fdasfwqewlkja484w"),
        _header(
            "Wechatpay-Serial",
            "wechat: platform certificate serial",
            "5157F09EFDC096DE15EBE81A47057A72",
        ),
        _header("Wechatpay-Signature-Type", "wechat", "WECHATPAY2-SHA256-RSA2048"),
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

    status: str = Field(
        description="applied, duplicate, refunding, alerted, recorded (a failed payment) or ignored"
    )


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
    headers = dict(request.headers)

    def apply() -> str:
        # Verifying may fetch the provider's new certificates: blocking I/O, off the loop.
        event = get_provider(provider, settings).verify_webhook(headers, body)
        outcome = services.handle_event(session, event)
        session.commit()
        return outcome

    return {"status": await run_in_threadpool(apply)}


@router.get("/api/v1/refunds", response_model=list[RefundOut], responses=problems(401, 403))
def refunds_by_status(
    user: OpsOrAdmin,
    session: SessionDep,
    status: Annotated[str, Query(pattern="^(pending|succeeded|failed|resolved)$")] = "pending",
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
        locked = lock_order(session, order_id)  # refund locks it too; before and after hold
        before = services.refundable_cents(session, locked)
        row = services.refund(session, order, body.amount_cents, body.reason, key)
        record(
            session,
            user.actor,
            "order.refund",
            "order",
            order_id,
            reason=body.reason,
            details={"amount_cents": body.amount_cents, "refund_id": row.id},
            before={"refundable_cents": before},
            after={"refundable_cents": services.refundable_cents(session, locked)},
        )
        return 201, RefundOut.model_validate(row).model_dump(mode="json")

    return idem.respond(session, user.id, body.model_dump(), work)


# Free text that ends up in the audit log: no NUL or other control characters but newlines.
_PRINTABLE = r"^[^\x00-\x09\x0b-\x1f\x7f]*$"


class RefundRetryIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"note": "WeChat Pay balance topped up; try again"}]}
    )

    note: Annotated[str, Field(min_length=3, max_length=500, pattern=_PRINTABLE)]


class RefundResolveIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"note": "paid by bank transfer on 12 Dec", "reference": "ICBC-20261212-0042"}
            ]
        }
    )

    note: Annotated[str, Field(min_length=3, max_length=500, pattern=_PRINTABLE)]
    reference: Annotated[str, Field(min_length=1, max_length=100, pattern=_PRINTABLE)] | None = None


RefundId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9a-f-]{1,36}$")]


@router.post(
    "/api/v1/refunds/{refund_id}/retry",
    response_model=RefundOut,
    responses=problems(401, 403, 404, 409, 422),
)
def retry_refund(
    refund_id: RefundId, body: RefundRetryIn, user: OpsOrAdmin, session: SessionDep
) -> Refund:
    """Ops: a refund that failed for good goes back to the retry queue (fresh attempts)."""
    row = resolution.retry_failed(session, refund_id, user.actor, body.note)
    session.commit()
    return row


@router.post(
    "/api/v1/refunds/{refund_id}/resolve",
    response_model=RefundOut,
    responses=problems(401, 403, 404, 409, 422),
)
def resolve_refund(
    refund_id: RefundId, body: RefundResolveIn, user: OpsOrAdmin, session: SessionDep
) -> Refund:
    """Ops: a refund that failed for good was paid another way; record how (audited)."""
    row = resolution.resolve_failed(session, refund_id, user.actor, body.note, body.reference)
    session.commit()
    return row
