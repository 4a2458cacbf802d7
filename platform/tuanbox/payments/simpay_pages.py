"""SimPay's hosted payment page (it plays the gateway's website); mounted outside production only.

The confirm button takes no sign-in and marks the order paid, as a gateway's page would after
the shopper paid: that is why the app mounts this router only when the simulator is enabled
(`Settings.simpay_enabled`, never in production), and why the routes refuse to work if it is not.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Annotated

import httpx
from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from tuanbox.api.deps import SessionDep, SettingsDep
from tuanbox.payments import services
from tuanbox.payments.errors import UnknownIntentError, UnknownProviderError
from tuanbox.payments.models import PaymentIntent
from tuanbox.payments.simpay import SimPay
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.payments")
router = APIRouter(tags=["payments"])

_PAGE = """<!doctype html><html lang="zh"><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>SimPay</title><style nonce="{nonce}">body{{font-family:sans-serif;max-width:28em;
margin:2em auto}} .amount{{font-size:2em}} button{{font-size:1.2em;padding:.5em 2em}}</style>
<body><main><h1>SimPay 模拟支付</h1><p>Order {order}</p><p class="amount">¥{amount}</p>
<form method="post" action="/pay/sim/{intent}/confirm"><input type="hidden" name="return"
 value="{back}"><button type="submit">Pay / 支付</button></form></main></body></html>"""
# Where the merchant asked the shopper to be sent back (a real gateway's return URL): a path
# on our own site only, so the page cannot be made to redirect elsewhere.
_BACK = re.compile(r"/[A-Za-z0-9/_-]{0,200}")
ReturnPath = Annotated[str | None, Query(alias="return", max_length=201)]


def _back(value: str | None) -> str:
    return value if value and _BACK.fullmatch(value) and not value.startswith("//") else ""


def _sim_intent(session: SessionDep, settings: Settings, intent_id: str) -> PaymentIntent:
    if not settings.simpay_enabled:
        # Belt and braces: the router is not mounted then, but it must not work if it were.
        raise UnknownProviderError("the simulated gateway is not enabled here")
    intent = session.get(PaymentIntent, intent_id)
    if intent is None:
        # A membership term is paid on the same hosted page (`tuanbox.membership`); a
        # transient intent stands for it (never added to the session).
        from tuanbox.membership.models import MembershipTerm

        term = session.get(MembershipTerm, intent_id)
        if term is not None and term.status == "pending":
            intent = PaymentIntent(
                id=term.id, order_id="membership", provider=term.provider,
                amount_cents=term.amount_cents,
            )  # fmt: skip
    if intent is None or intent.provider != "sim":
        raise UnknownIntentError("no such payment")
    return intent


@router.get("/pay/sim/{intent_id}", response_class=HTMLResponse, include_in_schema=False)
def sim_page(
    intent_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    back: ReturnPath = None,
) -> str:
    intent = _sim_intent(session, settings, intent_id)
    return _PAGE.format(
        order=html.escape(intent.order_id),
        amount=f"{intent.amount_cents // 100}.{intent.amount_cents % 100:02d}",
        intent=html.escape(intent.id),
        nonce=request.state.csp_nonce,
        back=html.escape(_back(back)),
    )


@router.post("/pay/sim/{intent_id}/confirm", response_model=None, include_in_schema=False)
def sim_confirm(
    intent_id: str,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
    back: Annotated[str, Form(alias="return", max_length=201)] = "",
) -> HTMLResponse | RedirectResponse:
    """The shopper pays on the gateway; the gateway then notifies us by signed webhook and
    sends the shopper back to the shop's page (when it named one)."""
    intent = _sim_intent(session, settings, intent_id)
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
    if _back(back):
        return RedirectResponse(f"{_back(back)}?ok=paid", status_code=303)
    return HTMLResponse("<!doctype html><meta charset='utf-8'><p>Payment received. 支付成功。</p>")


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
