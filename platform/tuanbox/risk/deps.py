"""The `RiskGate` dependency: a request's IP and device id, for the risk screens of a route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from tuanbox.accounts.signin import DEVICE_ID_PATTERN
from tuanbox.api.deps import SettingsDep
from tuanbox.orders.models import Order
from tuanbox.ratelimit.deps import client_ip
from tuanbox.risk import services
from tuanbox.risk.decisions import Screening
from tuanbox.risk.rules import Event
from tuanbox.settings import Settings

# The same header, and the same bounds, as the sign-in limits (`tuanbox.accounts.signin`).
DeviceId = Annotated[
    str | None,
    Header(
        alias="X-Device-ID",
        pattern=DEVICE_ID_PATTERN,
        description="The app's random install id (8-64 of A-Z a-z 0-9 . _ : -): risk control "
        "counts orders and accounts per device.",
        examples=["ios-6f1c0b2e9d4a4c1e"],
    ),
]


@dataclass(frozen=True)
class RiskGate:
    """Where a request comes from, and the screens a route runs with it."""

    settings: Settings
    ip: str
    device_id: str | None

    def before_order(self, session: Session, event: Event, user_id: str) -> Screening | None:
        return services.before_order(
            session,
            self.settings,
            event=event,
            user_id=user_id,
            ip=self.ip,
            device_id=self.device_id,
        )

    def after_order(self, session: Session, screening: Screening | None, order: Order) -> None:
        services.after_order(session, screening, order)

    def at_checkout(self, session: Session, order: Order) -> None:
        services.at_checkout(session, self.settings, order, ip=self.ip, device_id=self.device_id)


def get_risk_gate(request: Request, settings: SettingsDep, device_id: DeviceId = None) -> RiskGate:
    return RiskGate(settings, client_ip(request), device_id)


RiskGateDep = Annotated[RiskGate, Depends(get_risk_gate)]
