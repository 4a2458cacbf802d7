"""Personal data the privacy tests enter through the API, and signing in the way a phone does."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tuanbox.accounts.services import normalise_phone
from tuanbox.crypto import PiiCipher
from tuanbox.notifications.models import Notification
from tuanbox.notifications.records import secrets_of
from tuanbox.settings import Settings

SHOPPER_PHONE = "+86 139 1234 5678"
# Every way the shopper's number may have been written down; none may be in a dump.
PHONE_FORMS = ("13912345678", "139 1234 5678", "139-1234-5678", "+86 139", "8613912345678")
SHOPPER_NAME = "张晓明 Zhang Xiaoming"
ADDRESSES = (
    "深圳市南山区莲花路88号5栋302室",
    "Room 302, Building 5, 88 Lianhua Road, Nanshan, Shenzhen",
)
STAFF_NAME = "林美华 Lin Meihua"
OPS_NAME = "周建国 Zhou Jianguo"
# Needles: whole values and the parts a partial copy would still show.
NAMES = ("张晓明", "Zhang Xiaoming", "林美华", "Lin Meihua", "周建国", "Zhou Jianguo")
ADDRESS_PARTS = ("莲花路", "Lianhua", "南山区", "Building 5")


def last_code(session: Session, settings: Settings, phone: str) -> str:
    """The last code (sign-in or erasure) texted to `phone` (test settings keep it, encrypted,
    in the inbox)."""
    e164 = normalise_phone(phone, settings.phone_default_region)
    note = session.scalars(
        sa.select(Notification)
        .where(
            Notification.recipient_hash == PiiCipher(settings).blind_index(e164),
            Notification.template.in_(("otp", "erasure_code")),
        )
        .order_by(Notification.id.desc())
    ).first()
    assert note is not None, "no code was texted"
    return str(secrets_of(PiiCipher(settings), note)["code"])


def sign_in(client: TestClient, session: Session, settings: Settings, phone: str) -> dict[str, Any]:
    """OTP sign-in through the API: the token response (access, refresh, user)."""
    sent = client.post("/api/v1/auth/otp", json={"phone": phone})
    assert sent.status_code == 202, sent.text
    code = last_code(session, settings, phone)
    grant = {"grant_type": "otp", "phone": phone, "code": code}
    response = client.post("/api/v1/auth/token", json=grant)
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def erasure_headers(
    client: TestClient, session: Session, settings: Settings, tokens: dict[str, Any], phone: str
) -> dict[str, str]:
    """Ask for an erasure code through the API and return the headers that erase with it."""
    sent = client.post("/api/v1/me/erasure-code", headers=bearer(tokens))
    assert sent.status_code == 202, sent.text
    return {**bearer(tokens), "X-Erasure-Code": last_code(session, settings, phone)}
