"""Typed codes at the keypad: which door a pickup or deposit code opens, and the one attempt
limiter they share, kept in the store so that a reboot does not reset it."""

from __future__ import annotations

from datetime import datetime

from edge.agent.deposit import match_deposit_code
from edge.agent.messages import Purpose
from edge.agent.pickup import InputKind, KeypadLimiter, match_pickup_code
from edge.agent.store import Store


def load_limiter(store: Store, max_attempts: int, lockout_s: float) -> KeypadLimiter:
    saved = store.get_json("keypad") or {}
    return KeypadLimiter(
        max_attempts,
        lockout_s,
        failures=saved.get("failures", 0),
        locked_until=saved.get("locked_until", 0.0),
    )


def save_limiter(store: Store, limiter: KeypadLimiter) -> None:
    store.set_json("keypad", {"failures": limiter.failures, "locked_until": limiter.locked_until})


def code_target(
    store: Store, kind: InputKind, code: str, *, locker_id: str, now: datetime
) -> tuple[str, Purpose] | None:
    """The door a typed code opens and why, or None when it matches nothing armed."""
    if kind == "pickup_code":
        pickup = match_pickup_code(code, locker_id=locker_id, now=now, pickups=store.pickups())
        if pickup is None:
            return None
        return pickup.compartment, Purpose("pickup", pickup.order_id, pickup.token_id, "code")
    res = match_deposit_code(code, locker_id=locker_id, now=now, reservations=store.reservations())
    return (res.compartment, Purpose("deposit", res.order_id)) if res else None
