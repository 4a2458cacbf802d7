"""The tables holding personal ciphertext, each with how to find and re-encrypt its stale rows.

A row is stale when a field is under another key id than the current one, or (from before
migration 0018) in clear. Each table says how to read a batch after a primary-key cursor and
what one row's new values are, with the values it must still hold for the update to apply.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, null, or_, select, tuple_
from sqlalchemy.orm import Session

from tuanbox.accounts.models import Address, User
from tuanbox.crypto import PiiCipher
from tuanbox.fulfilment import codes
from tuanbox.fulfilment.models import Booking
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.idempotency.services import seal
from tuanbox.notifications.models import Notification, SmsOutbox


def _table(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def _stale(column: Any, prefix: str) -> ColumnElement[bool]:
    """Ciphertext under another key id (substr, not LIKE: `_` in a key id is a LIKE wildcard)."""
    return and_(column.is_not(None), func.substr(column, 1, len(prefix)) != prefix)


@dataclass(frozen=True)
class Rewrite:
    """One row's new values, applied only if the row still holds `expect`."""

    model: type[Any]
    expect: dict[str, Any]
    values: dict[str, Any]


@dataclass
class Plan:
    rewrites: list[Rewrite] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # row ids, for the log
    scanned: int = 0
    last: Any = None  # the cursor after this batch


class Target:
    """One table with encrypted columns: which rows are stale, and how to re-encrypt one."""

    name: str
    model: type[Any]
    table: Table

    def stale(self, prefix: str) -> ColumnElement[bool]:
        raise NotImplementedError

    def after(self, cursor: Any) -> ColumnElement[bool]:
        raise NotImplementedError

    def rows(self, session: Session, prefix: str, cursor: Any, limit: int) -> Sequence[Any]:
        raise NotImplementedError

    def rewrite(self, cipher: PiiCipher, row: Any) -> Rewrite | None:
        raise NotImplementedError

    def cursor_of(self, row: Any) -> Any:
        return row.id

    def label(self, row: Any) -> str:
        return str(row.id)


class Users(Target):
    name, model, table = "users", User, _table(User)

    def stale(self, prefix: str) -> ColumnElement[bool]:
        return or_(
            _stale(User.phone_enc, prefix),
            _stale(User.display_name_enc, prefix),
            User.display_name.is_not(None),
        )

    def after(self, cursor: Any) -> ColumnElement[bool]:
        return User.id > str(cursor) if cursor is not None else User.id.is_not(None)

    def rows(self, session: Session, prefix: str, cursor: Any, limit: int) -> Sequence[Any]:
        query = select(User.id, User.phone_enc, User.display_name, User.display_name_enc)
        query = query.where(self.after(cursor), self.stale(prefix))
        return session.execute(query.order_by(User.id).limit(limit)).all()

    def rewrite(self, cipher: PiiCipher, row: Any) -> Rewrite | None:
        expect: dict[str, Any] = {"id": row.id}
        values: dict[str, Any] = {}
        if row.phone_enc is not None and cipher.needs_rotation(row.phone_enc):
            phone = cipher.decrypt(row.phone_enc, context="phone")
            expect["phone_enc"] = row.phone_enc
            values["phone_enc"] = cipher.encrypt(phone, context="phone")
            values["phone_hash"] = cipher.blind_index(phone)
        context = f"display_name:{row.id}"
        legacy, sealed = row.display_name, row.display_name_enc
        fresh = sealed
        if sealed is not None and cipher.needs_rotation(sealed):
            fresh = cipher.encrypt(cipher.decrypt(sealed, context=context), context=context)
        elif sealed is None and legacy is not None:
            fresh = cipher.encrypt(legacy, context=context)
        # An encrypted name wins over a legacy plaintext one left beside it; either way the
        # plaintext goes.
        if fresh != sealed or legacy is not None:
            expect.update(display_name=legacy, display_name_enc=sealed)
            values.update(display_name=None, display_name_enc=fresh)
        return Rewrite(self.model, expect, values) if values else None


class Addresses(Target):
    name, model, table = "addresses", Address, _table(Address)

    def stale(self, prefix: str) -> ColumnElement[bool]:
        return _stale(Address.address_enc, prefix)

    def after(self, cursor: Any) -> ColumnElement[bool]:
        return Address.id > str(cursor) if cursor is not None else Address.id.is_not(None)

    def rows(self, session: Session, prefix: str, cursor: Any, limit: int) -> Sequence[Any]:
        query = select(Address.id, Address.user_id, Address.address_enc)
        query = query.where(self.after(cursor), self.stale(prefix))
        return session.execute(query.order_by(Address.id).limit(limit)).all()

    def rewrite(self, cipher: PiiCipher, row: Any) -> Rewrite | None:
        context = f"address:{row.user_id}"
        text = cipher.decrypt(row.address_enc, context=context)
        return Rewrite(
            self.model,
            {"id": row.id, "address_enc": row.address_enc},
            {"address_enc": cipher.encrypt(text, context=context)},
        )


class Notifications(Target):
    name, model, table = "notifications", Notification, _table(Notification)

    def stale(self, prefix: str) -> ColumnElement[bool]:
        return _stale(Notification.secrets_enc, prefix)

    def after(self, cursor: Any) -> ColumnElement[bool]:
        return Notification.id > int(cursor) if cursor is not None else Notification.id.is_not(None)

    def rows(self, session: Session, prefix: str, cursor: Any, limit: int) -> Sequence[Any]:
        query = select(Notification.id, Notification.secrets_enc)
        query = query.where(self.after(cursor), self.stale(prefix))
        return session.execute(query.order_by(Notification.id).limit(limit)).all()

    def rewrite(self, cipher: PiiCipher, row: Any) -> Rewrite | None:
        context = f"notification:{row.id}"  # as tuanbox.notifications.records binds it
        text = cipher.decrypt(row.secrets_enc, context=context)
        return Rewrite(
            self.model,
            {"id": row.id, "secrets_enc": row.secrets_enc},
            {"secrets_enc": cipher.encrypt(text, context=context)},
        )


class IdempotencyKeys(Target):
    """Stored responses: re-encrypted, and those kept in clear before 0018 encrypted."""

    name, model, table = "idempotency_keys", IdempotencyKey, _table(IdempotencyKey)

    def stale(self, prefix: str) -> ColumnElement[bool]:
        legacy = and_(
            IdempotencyKey.response_enc.is_(None),
            IdempotencyKey.state == "done",
            IdempotencyKey.response_status.is_not(None),
        )
        return or_(_stale(IdempotencyKey.response_enc, prefix), legacy)

    def after(self, cursor: Any) -> ColumnElement[bool]:
        if cursor is None:
            return IdempotencyKey.key.is_not(None)
        principal, key = cursor
        return tuple_(IdempotencyKey.principal, IdempotencyKey.key) > tuple_(principal, key)

    def rows(self, session: Session, prefix: str, cursor: Any, limit: int) -> Sequence[Any]:
        k = IdempotencyKey
        query = select(k.principal, k.key, k.response_enc, k.response_body)
        query = query.where(self.after(cursor), self.stale(prefix))
        return session.execute(query.order_by(k.principal, k.key).limit(limit)).all()

    def rewrite(self, cipher: PiiCipher, row: Any) -> Rewrite | None:
        expect = {"principal": row.principal, "key": row.key, "response_enc": row.response_enc}
        if row.response_enc is None:
            body = row.response_body
        else:
            context = f"idempotency:{row.principal}:{row.key}"
            body = json.loads(cipher.decrypt(row.response_enc, context=context))
        values = {
            "response_enc": seal(cipher, row.principal, row.key, body),
            "response_body": null(),
        }
        return Rewrite(self.model, expect, values)

    def cursor_of(self, row: Any) -> Any:
        return [row.principal, row.key]

    def label(self, row: Any) -> str:
        return f"{row.principal}/…"  # the key is the client's string: not logged


class Bookings(Target):
    """Courier deposit and retrieval codes (`tuanbox.fulfilment.codes`)."""

    name, model, table = "compartment_bookings", Booking, _table(Booking)

    def stale(self, prefix: str) -> ColumnElement[bool]:
        return or_(
            _stale(Booking.deposit_code_enc, prefix), _stale(Booking.retrieval_code_enc, prefix)
        )

    def after(self, cursor: Any) -> ColumnElement[bool]:
        return Booking.id > int(cursor) if cursor is not None else Booking.id.is_not(None)

    def rows(self, session: Session, prefix: str, cursor: Any, limit: int) -> Sequence[Any]:
        query = select(
            Booking.id, Booking.ref, Booking.deposit_code_enc, Booking.retrieval_code_enc
        )
        query = query.where(self.after(cursor), self.stale(prefix))
        return session.execute(query.order_by(Booking.id).limit(limit)).all()

    def rewrite(self, cipher: PiiCipher, row: Any) -> Rewrite | None:
        expect = {
            "id": row.id,
            "deposit_code_enc": row.deposit_code_enc,
            "retrieval_code_enc": row.retrieval_code_enc,
        }
        values: dict[str, Any] = {}
        kinds: tuple[tuple[str, codes.Kind], ...] = (
            ("deposit_code_enc", "deposit"),
            ("retrieval_code_enc", "retrieval"),
        )
        for column, kind in kinds:
            sealed = getattr(row, column)
            if sealed is not None and cipher.needs_rotation(sealed):
                code = codes.reveal(cipher, row.ref, kind, sealed)
                values[column] = codes.seal(cipher, row.ref, kind, code)
        return Rewrite(self.model, expect, values) if values else None


class SmsOutboxes(Target):
    """Texts waiting to be sent (`tuanbox.notifications.outbox`): their encrypted payload."""

    name, model, table = "sms_outbox", SmsOutbox, _table(SmsOutbox)

    def stale(self, prefix: str) -> ColumnElement[bool]:
        return _stale(SmsOutbox.payload_enc, prefix)

    def after(self, cursor: Any) -> ColumnElement[bool]:
        return SmsOutbox.id > int(cursor) if cursor is not None else SmsOutbox.id.is_not(None)

    def rows(self, session: Session, prefix: str, cursor: Any, limit: int) -> Sequence[Any]:
        query = select(SmsOutbox.id, SmsOutbox.key, SmsOutbox.payload_enc)
        query = query.where(self.after(cursor), self.stale(prefix))
        return session.execute(query.order_by(SmsOutbox.id).limit(limit)).all()

    def rewrite(self, cipher: PiiCipher, row: Any) -> Rewrite | None:
        context = f"sms_outbox:{row.key}"  # as tuanbox.notifications.outbox binds it
        text = cipher.decrypt(row.payload_enc, context=context)
        return Rewrite(
            self.model,
            {"id": row.id, "payload_enc": row.payload_enc},
            {"payload_enc": cipher.encrypt(text, context=context)},
        )


TARGETS: tuple[Target, ...] = (
    Users(),
    Addresses(),
    Notifications(),
    IdempotencyKeys(),
    Bookings(),
    SmsOutboxes(),
)
