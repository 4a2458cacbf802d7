"""Pickup rules (pure): which door, if any, a scanned QR or typed code may open.

Scanner/keypad lines::

    TBX1.<payload>.<signature>   pickup QR token (checked offline against the armed pickup)
    #123456                      pickup fallback code (hash of an armed pickup)
    *123456                      courier deposit code (hash of an ``assign`` reservation)

Typed codes share one attempt limiter that lives in the store, so a reboot does not reset it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.agent.errors import PickupRejectedError
from edge.agent.ledger import ArmedPickup
from edge.protocol.envelopes import codes_match
from edge.protocol.errors import TokenError
from edge.protocol.token import TOKEN_PREFIX, PickupToken, verify_token

InputKind = Literal["qr", "pickup_code", "deposit_code"]
MAX_CODE_DIGITS = 12


@dataclass(frozen=True)
class ScannerInput:
    kind: InputKind
    text: str


def classify(line: str) -> ScannerInput:
    """What a scanner or keypad line is; PickupRejectedError(UNKNOWN_INPUT) otherwise."""
    text = line.strip()
    if text.startswith(f"{TOKEN_PREFIX}."):
        return ScannerInput("qr", text)
    if len(text) >= 2 and text[0] in "#*" and text[1:].isdigit():
        if len(text) - 1 > MAX_CODE_DIGITS:
            raise PickupRejectedError("code too long", code="CODE_MALFORMED")
        return ScannerInput("pickup_code" if text[0] == "#" else "deposit_code", text[1:])
    raise PickupRejectedError("not a pickup token or keypad code", code="UNKNOWN_INPUT")


def check_qr(
    text: str,
    public_key: Ed25519PublicKey | None,
    *,
    locker_id: str,
    now: datetime,
    pickups: Mapping[str, ArmedPickup],
    token_used: Callable[[str], bool],
) -> tuple[PickupToken, ArmedPickup]:
    """Signature, locker, expiry, single use, armed compartment(s); the reason code on failure.

    A split order's token opens several compartments (``token.compartments``): every one must
    be armed with this token id (the first one also for its order), or none is opened. The
    caller still has to record the token in the ledger atomically before opening.
    """
    if public_key is None:
        raise PickupRejectedError("no pickup public key configured", code="NO_PUBLIC_KEY")
    try:
        token = verify_token(text, public_key, locker_id=locker_id, now=now)
    except TokenError as exc:
        raise PickupRejectedError(exc.message, code=exc.code) from exc
    if token_used(token.tid):
        raise PickupRejectedError(f"token {token.tid} was already used", code="TOKEN_USED")
    armed = pickups.get(token.cmp)
    if armed is None or armed.token_id != token.tid or armed.order_id != token.oid:
        raise PickupRejectedError(
            f"compartment {token.cmp} is not armed for this token", code="NOT_ARMED"
        )
    for label in token.more:
        other = pickups.get(label)
        if other is None or other.token_id != token.tid:
            raise PickupRejectedError(
                f"compartment {label} is not armed for this token", code="NOT_ARMED"
            )
    if any(now >= pickups[c].valid_until for c in token.compartments):
        raise PickupRejectedError("pickup window has closed", code="PICKUP_EXPIRED")
    return token, armed


def armed_doors(token: PickupToken, pickups: Mapping[str, ArmedPickup]) -> list[ArmedPickup]:
    """The armed pickups a checked token opens, in the order the doors open."""
    return [pickups[c] for c in token.compartments]


def match_pickup_code(
    code: str, *, locker_id: str, now: datetime, pickups: Mapping[str, ArmedPickup]
) -> ArmedPickup | None:
    """The armed pickup whose fallback code this is (every hash compared, constant-time)."""
    found = None
    for armed in pickups.values():
        if codes_match(code, locker_id, armed.code_hash) and now < armed.valid_until:
            found = armed
    return found


@dataclass
class KeypadLimiter:
    """Lockout after ``max_attempts`` consecutive wrong codes, for ``lockout_s`` seconds."""

    max_attempts: int
    lockout_s: float
    failures: int = 0
    locked_until: float = 0.0  # unix seconds, so it survives a restart

    def check(self, now: float) -> None:
        if now < self.locked_until:
            raise PickupRejectedError(
                f"keypad locked for {self.locked_until - now:.0f}s more", code="KEYPAD_LOCKED"
            )

    def failed(self, now: float) -> None:
        self.failures += 1
        if self.failures >= self.max_attempts:
            self.locked_until, self.failures = now + self.lockout_s, 0

    def succeeded(self) -> None:
        self.failures = 0
