"""Courier deposit rules (pure): the ``*code`` typed at the keypad and the reservation it opens.

An ``assign`` command reserves a compartment with the hash of the courier's deposit code. The
code opens that compartment until the reservation expires or a parcel has been deposited;
the door closing with the infrared bit set is what makes it a deposit (see ``core``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from edge.agent.ledger import Reservation
from edge.protocol.envelopes import codes_match


def match_deposit_code(
    code: str, *, locker_id: str, now: datetime, reservations: Mapping[str, Reservation]
) -> Reservation | None:
    """The open reservation whose courier code this is."""
    found = None
    for res in reservations.values():
        alive = res.expires_at is None or now < res.expires_at
        if codes_match(code, locker_id, res.code_hash) and alive and not res.deposited:
            found = res
    return found
