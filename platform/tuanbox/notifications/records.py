"""Writing notification rows: secret fields are split off and never stored in clear.

A payload's secret fields (the codes a recipient types somewhere) are named in
`SECRET_FIELDS`. The row keeps the other fields and lists the secret ones under
`"redacted"`. With a `PiiCipher` (development inbox only) the secret fields are also kept
encrypted in `secrets_enc`, bound to the row by the context `notification:{id}`, so that a
person at /dev/inbox can read them; without one (the gateway) they are gone once sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from tuanbox.crypto import PiiCipher
from tuanbox.notifications.models import Notification

# Sign-in codes, pickup fallback codes, courier deposit and retrieval codes.
SECRET_FIELDS = frozenset({"code", "fallback_code", "deposit_code", "retrieval_code"})
REDACTED = "redacted"


def split_secrets(payload: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(public fields, secret fields) of a payload."""
    public = {k: v for k, v in payload.items() if k not in SECRET_FIELDS}
    secret = {k: v for k, v in payload.items() if k in SECRET_FIELDS}
    return public, secret


def has_secrets(payload: Mapping[str, Any]) -> bool:
    return not SECRET_FIELDS.isdisjoint(payload)


def _context(row: Notification) -> str:
    return f"notification:{row.id}"


def record(
    session: Session,
    *,
    channel: str,
    template: str,
    payload: Mapping[str, Any],
    user_id: str | None = None,
    recipient_hash: str | None = None,
    cipher: PiiCipher | None = None,
    extra: Mapping[str, Any] | None = None,
    private: Mapping[str, Any] | None = None,
) -> Notification:
    """Add the row for one message; commits with the caller's transaction.

    `extra` fields are stored as they are (e.g. the gateway's message id); `private` ones
    (e.g. the number, for the inbox) are kept only encrypted, and only with a `cipher`."""
    public, secret = split_secrets(payload)
    if secret:
        public[REDACTED] = sorted(secret)
    public.update(extra or {})
    row = Notification(
        channel=channel,
        user_id=user_id,
        recipient_hash=recipient_hash,
        template=template,
        payload=public,
    )
    session.add(row)
    sealed = {**secret, **(private or {})}
    if sealed and cipher is not None:
        session.flush()  # the id binds the ciphertext to this row
        row.secrets_enc = cipher.encrypt(json.dumps(sealed), context=_context(row))
    return row


def secrets_of(cipher: PiiCipher, row: Notification) -> dict[str, Any]:
    """The secret fields kept for the development inbox (empty when none were kept)."""
    if not row.secrets_enc:
        return {}
    value = json.loads(cipher.decrypt(row.secrets_enc, context=_context(row)))
    return dict(value) if isinstance(value, dict) else {}
