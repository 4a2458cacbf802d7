"""Pickup QR tokens ``TBX1.<b64url payload>.<b64url Ed25519 signature>``, checked offline.

The signature covers the ASCII bytes ``TBX1.<b64url payload>`` (as in JWS), so neither the
version tag nor a single payload byte can change without breaking it. An order too big for one
compartment is split across several; its one token lists the others in ``more``, opened in
order after ``cmp``. The field is left out when empty, so a one-compartment token is byte for
byte what it was before ``more`` existed, and older agents still read it. Compartment and
single-use checks need the locker's ledger and belong to the agent; :func:`check_compartment`
is the shared helper for the first.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.protocol.envelopes import Compartment, LockerId
from edge.protocol.errors import TokenError

TOKEN_PREFIX = "TBX1"  # noqa: S105 - a format tag, not a secret
# QR codes stay scannable well below this; anything longer is not ours.
MAX_TOKEN_LENGTH = 1024
# Compartments one token may open after its first (a split order's other parts).
MAX_MORE_COMPARTMENTS = 7


class PickupToken(BaseModel):
    """What the QR carries; short field names keep the QR small."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tid: str = Field(min_length=1, max_length=64, description="token id, single use")
    lid: LockerId = Field(description="locker id")
    cmp: Compartment = Field(description="compartment '<board>-<lock>'")
    oid: str = Field(min_length=1, max_length=64, description="order id")
    exp: int = Field(ge=0, description="expiry, unix seconds")
    iat: int = Field(ge=0, description="issued at, unix seconds")
    more: tuple[Compartment, ...] = Field(
        default=(),
        max_length=MAX_MORE_COMPARTMENTS,
        description="further compartments of a split order, opened in order after cmp",
    )

    @model_validator(mode="after")
    def _distinct(self) -> PickupToken:
        if len(set(self.compartments)) != len(self.compartments):
            raise ValueError("a compartment is listed twice")
        return self

    @property
    def compartments(self) -> tuple[str, ...]:
        """Every compartment the token opens, in the order the locker opens them."""
        return (self.cmp, *self.more)

    def payload(self) -> dict[str, object]:
        """The signed fields; ``more`` only when there is more than one compartment."""
        data = self.model_dump()
        if not self.more:
            del data["more"]
        else:
            data["more"] = list(self.more)
        return data


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not text or any(ch not in _B64URL_ALPHABET for ch in text):
        raise TokenError("token part is not base64url", code="TOKEN_MALFORMED")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise TokenError("token part is not base64url", code="TOKEN_MALFORMED") from exc
    # Unused trailing bits would let several strings carry the same bytes; allow only one.
    if _b64url_encode(data) != text:
        raise TokenError("token part is not canonical base64url", code="TOKEN_MALFORMED")
    return data


_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def sign_token(private_key: Ed25519PrivateKey, token: PickupToken) -> str:
    """Platform side: the compact string to put in the QR code."""
    payload = json.dumps(token.payload(), separators=(",", ":"), sort_keys=True).encode()
    signing_input = f"{TOKEN_PREFIX}.{_b64url_encode(payload)}"
    signature = private_key.sign(signing_input.encode("ascii"))
    return f"{signing_input}.{_b64url_encode(signature)}"


def _unix(now: datetime | float) -> float:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise TokenError("now must be timezone-aware", code="TOKEN_MALFORMED")
        return now.astimezone(UTC).timestamp()
    return float(now)


def verify_token(
    text: str, public_key: Ed25519PublicKey, *, locker_id: str, now: datetime | float
) -> PickupToken:
    """Check format, signature, locker and expiry; raise TokenError with a stable code.

    The signature is checked before the payload is even parsed, so a forged token can only
    ever produce TOKEN_MALFORMED or TOKEN_SIGNATURE.
    """
    text = text.strip()
    if len(text) > MAX_TOKEN_LENGTH:
        raise TokenError("token too long", code="TOKEN_MALFORMED")
    parts = text.split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise TokenError(f"not a {TOKEN_PREFIX} token", code="TOKEN_MALFORMED")
    payload_bytes = _b64url_decode(parts[1])
    signature = _b64url_decode(parts[2])
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"))
    except InvalidSignature as exc:
        raise TokenError("token signature is not valid", code="TOKEN_SIGNATURE") from exc
    try:
        token = PickupToken.model_validate_json(payload_bytes)
    except ValidationError as exc:
        raise TokenError(f"token payload invalid: {exc.error_count()} error(s)") from exc
    if token.lid != locker_id:
        raise TokenError(
            f"token is for locker {token.lid}, not {locker_id}", code="TOKEN_WRONG_LOCKER"
        )
    if _unix(now) >= token.exp:
        raise TokenError("token expired", code="TOKEN_EXPIRED")
    return token


def check_compartment(token: PickupToken, compartment: str) -> None:
    """Raise TOKEN_WRONG_COMPARTMENT unless the token opens ``compartment``."""
    if compartment not in token.compartments:
        raise TokenError(
            f"token opens compartment(s) {', '.join(token.compartments)}, not {compartment}",
            code="TOKEN_WRONG_COMPARTMENT",
        )


# --- keys -------------------------------------------------------------------------------


def _std_b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise TokenError(f"{what} is not valid base64", code="BAD_KEY") from exc


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    """Raw 32-byte Ed25519 public key in standard base64."""
    raw = _std_b64decode(text, "public key")
    if len(raw) != 32:
        raise TokenError(f"public key must be 32 bytes, got {len(raw)}", code="BAD_KEY")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_to_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def private_key_from_b64(text: str) -> Ed25519PrivateKey:
    """Raw 32-byte Ed25519 seed in standard base64."""
    raw = _std_b64decode(text, "private key")
    if len(raw) != 32:
        raise TokenError(f"private key must be 32 bytes, got {len(raw)}", code="BAD_KEY")
    return Ed25519PrivateKey.from_private_bytes(raw)


def private_key_to_b64(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def generate_keypair() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    private = Ed25519PrivateKey.generate()
    return private, private.public_key()


def new_fallback_code(digits: int = 6) -> str:
    """A uniformly random numeric code for keypads (leading zeros allowed)."""
    if not 4 <= digits <= 12:
        raise ValueError("digits must be between 4 and 12")
    return "".join(secrets.choice("0123456789") for _ in range(digits))
