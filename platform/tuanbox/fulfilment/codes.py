"""Courier deposit and retrieval codes, kept encrypted at rest.

The locker checks these codes offline against the hash it got in the `assign` /
`arm_pickup` command (`edge.protocol.envelopes.hash_code`); the platform never checks them.
It only has to show them again, on the run sheet, to the booking's merchant (its staff and
couriers) and to ops. So the row holds them encrypted with the PII key (AES-GCM), bound to
the booking and the kind of code by the context, and `reveal` is called only by the run
sheet after its merchant scoping.
"""

from __future__ import annotations

from typing import Literal

from tuanbox.crypto import PiiCipher

Kind = Literal["deposit", "retrieval"]


def context(ref: str, kind: Kind) -> str:
    return f"booking:{ref}:{kind}"


def seal(cipher: PiiCipher, ref: str, kind: Kind, code: str) -> str:
    """The stored form of a code of booking `ref`."""
    return cipher.encrypt(code, context=context(ref, kind))


def reveal(cipher: PiiCipher, ref: str, kind: Kind, sealed: str) -> str:
    """The code in clear (raises `PiiDecryptError` if the value was not sealed for this booking)."""
    return cipher.decrypt(sealed, context=context(ref, kind))
