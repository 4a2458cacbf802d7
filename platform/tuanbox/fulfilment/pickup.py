"""Pickup credentials: the signing key, the Ed25519 QR token, fallback codes and QR images."""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import Literal

import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from edge.protocol.envelopes import codes_match, hash_code
from edge.protocol.token import (
    PickupToken,
    generate_keypair,
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


def fallback_code_for(key: Ed25519PrivateKey, token_id: str, digits: int = 6) -> str:
    """The keypad code of a pickup token: an HMAC of its token id under a key derived from the
    signing key. Like the token it can be derived again, so the owner's pickup page shows it
    without the code ever being stored; without the signing key it is as random as any."""
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    subkey = hmac.new(seed, b"tuanbox pickup fallback code v1", hashlib.sha256).digest()
    mac = hmac.new(subkey, token_id.encode(), hashlib.sha256).digest()
    # 64 bits reduced mod 10^6: the bias is below 10^-13.
    return f"{int.from_bytes(mac[:8], 'big') % 10**digits:0{digits}d}"


def issue(booking: Booking, *, now: datetime, valid_until: datetime, key: Ed25519PrivateKey) -> str:
    """Give a deposited booking a fresh token id and fallback code; return the code in clear.

    Only the code's hash is kept (the locker checks it and limits attempts); the shopper gets
    the code in the pickup notification and on their own pickup page (`shown_fallback_code`).
    """
    booking.pickup_token_id = str(uuid.uuid4())
    code = fallback_code_for(key, booking.pickup_token_id)
    booking.token_issued_at = int(now.timestamp())
    booking.token_expires_at = int(valid_until.timestamp())
    booking.fallback_code_hash = hash_code(code, booking.locker_id)
    return code


def shown_fallback_code(booking: Booking, key: Ed25519PrivateKey) -> str | None:
    """The booking's fallback code for its owner's page, or None when it cannot be derived
    again (a code issued at random before codes were derived, or under an older key)."""
    if booking.pickup_token_id is None or booking.fallback_code_hash is None:
        return None
    code = fallback_code_for(key, booking.pickup_token_id)
    return code if codes_match(code, booking.locker_id, booking.fallback_code_hash) else None


def token_for(booking: Booking, compartment: Compartment, key: Ed25519PrivateKey) -> str:
    """The QR token string. Ed25519 signatures are deterministic, so re-signing the stored
    fields yields the same token every time; the token itself need not be stored.

    For a split order ``booking`` is the lead: the token also opens the other parts'
    compartments, in order."""
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
        more=tuple(booking.more_compartments or ()),
    )
    return sign_token(key, token)


def render_qr(token: str, kind: Literal["png", "svg"], scale: int = 6) -> bytes:
    qr = segno.make(token, error="m", micro=False)
    buffer = io.BytesIO()
    qr.save(buffer, kind=kind, scale=scale, border=4)
    return buffer.getvalue()
