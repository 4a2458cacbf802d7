"""Pickup credentials: the signing key, the Ed25519 QR token, fallback codes and QR images."""

from __future__ import annotations

import io
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal

import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol.envelopes import hash_code
from edge.protocol.token import (
    PickupToken,
    generate_keypair,
    new_fallback_code,
    private_key_from_b64,
    private_key_to_b64,
    public_key_to_b64,
    sign_token,
)
from tuanbox.fulfilment.errors import PickupNotReadyError
from tuanbox.fulfilment.models import Booking
from tuanbox.lockers.models import Compartment
from tuanbox.settings import Settings


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The key from TUANBOX_PICKUP_SIGNING_KEY, or (outside production) one kept under var/.

    Settings refuse production without the variable, so the file is a development
    convenience: the demo and a laptop keep the same key across restarts.
    """
    if settings.pickup_signing_key is not None:
        return private_key_from_b64(settings.pickup_signing_key.get_secret_value())
    path = Path(settings.pickup_signing_key_file)
    if path.exists():
        return private_key_from_b64(path.read_text().strip())
    private, _public = generate_keypair()
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting together must not each write a different key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return private_key_from_b64(path.read_text().strip())
    with os.fdopen(fd, "w") as fh:
        fh.write(private_key_to_b64(private) + "\n")
    return private


def public_key_b64(key: Ed25519PrivateKey) -> str:
    """What a locker needs (via a `configure` command) to check pickup tokens offline."""
    return public_key_to_b64(key.public_key())


def issue(booking: Booking, *, now: datetime, valid_until: datetime) -> str:
    """Give a deposited booking a fresh token id and fallback code; return the code in clear.

    The code goes to the shopper once (notification) and to nobody else; only its hash is
    kept, and the locker limits attempts.
    """
    code = new_fallback_code(6)
    booking.pickup_token_id = str(uuid.uuid4())
    booking.token_issued_at = int(now.timestamp())
    booking.token_expires_at = int(valid_until.timestamp())
    booking.fallback_code_hash = hash_code(code, booking.locker_id)
    return code


def token_for(booking: Booking, compartment: Compartment, key: Ed25519PrivateKey) -> str:
    """The QR token string. Ed25519 signatures are deterministic, so re-signing the stored
    fields yields the same token every time; the token itself need not be stored."""
    if (
        booking.pickup_token_id is None
        or booking.token_issued_at is None
        or booking.token_expires_at is None
    ):
        raise PickupNotReadyError("the parcel has not been deposited yet")
    token = PickupToken(
        tid=booking.pickup_token_id,
        lid=booking.locker_id,
        cmp=compartment.label,
        oid=booking.ref,
        exp=booking.token_expires_at,
        iat=booking.token_issued_at,
    )
    return sign_token(key, token)


def render_qr(token: str, kind: Literal["png", "svg"], scale: int = 6) -> bytes:
    qr = segno.make(token, error="m", micro=False)
    buffer = io.BytesIO()
    qr.save(buffer, kind=kind, scale=scale, border=4)
    return buffer.getvalue()
