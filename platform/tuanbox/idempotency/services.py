"""Run a creating request at most once per (principal, Idempotency-Key).

The claim is an `INSERT ... ON CONFLICT DO NOTHING` committed on its own, before the work,
so a concurrent duplicate sees it at once and gets 409 instead of running the work again.
The stored response is written in the same transaction as the work itself: either both
commit or neither does (and then the claim is released so the client may retry). It is kept
encrypted with the PII key, since a reply may carry personal data (a saved address).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.idempotency.errors import IdempotencyInProgressError, IdempotencyKeyReusedError
from tuanbox.idempotency.models import IdempotencyKey

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    replayed: bool


def request_hash(method: str, path: str, payload: Any) -> str:
    canonical = json.dumps(jsonable_encoder(payload), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _context(principal: str, key: str) -> str:
    return f"idempotency:{principal}:{key}"


def seal(cipher: PiiCipher, principal: str, key: str, body: Any) -> str:
    """A stored response body, encrypted and bound to its principal and key."""
    return cipher.encrypt(json.dumps(body, separators=(",", ":")), context=_context(principal, key))


def stored_body(cipher: PiiCipher, row: IdempotencyKey) -> Any:
    """The stored response body (rows from before 0018 kept it in clear)."""
    if row.response_enc is None:
        return row.response_body
    return json.loads(cipher.decrypt(row.response_enc, context=_context(row.principal, row.key)))


def _insert(conn_or_session: Connection | Session, values: dict[str, Any]) -> bool:
    dialect = (
        conn_or_session.get_bind().dialect.name
        if isinstance(conn_or_session, Session)
        else conn_or_session.dialect.name
    )
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        ins(IdempotencyKey)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["principal", "key"])
        .returning(IdempotencyKey.key)
    )
    # RETURNING, not rowcount: an ORM-enabled INSERT does not report a skipped conflict.
    return conn_or_session.execute(stmt).first() is not None


def _separate(session: Session) -> Connection | None:
    """A connection outside the session's transaction, when the session is on an Engine.

    Tests bind the session to one connection wrapped in a rolled-back transaction; there the
    claim goes into a SAVEPOINT of that same transaction instead (single-connection tests).
    """
    bind = session.get_bind()
    return None if isinstance(bind, Connection) else bind.connect()


def run(
    session: Session,
    *,
    principal: str,
    key: str | None,
    method: str,
    path: str,
    payload: Any,
    work: Callable[[], tuple[int, Any]],
    cipher: PiiCipher,
    stale_after_s: int = 60,
) -> StoredResponse:
    """Do `work()` (which must not commit) once per key and commit; replay it afterwards.

    `work` returns (status, json-able body). Without a key, the work simply runs once.
    """
    if key is None:
        status, body = work()
        body = jsonable_encoder(body)
        session.commit()
        return StoredResponse(status, body, replayed=False)
    if not key or len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyReusedError(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters")
    digest = request_hash(method, path, payload)
    now = utcnow()
    values = {
        "principal": principal,
        "key": key,
        "method": method,
        "path": path,
        "request_hash": digest,
        "state": "in_progress",
        "created_at": now,
        "claimed_at": now,
    }
    claimed = _claim(session, values, stale_after_s)
    if not claimed:
        existing = session.scalars(
            select(IdempotencyKey)
            .where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
            .execution_options(populate_existing=True)
        ).one()
        if existing.request_hash != digest:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used with a different request", key=key
            )
        if existing.state == "done" and existing.response_status is not None:
            body = stored_body(cipher, existing)
            return StoredResponse(existing.response_status, body, replayed=True)
        raise IdempotencyInProgressError("a request with this key is still running", key=key)
    try:
        status, body = work()
        body = jsonable_encoder(body)
        session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
            .values(
                state="done",
                response_status=status,
                response_enc=seal(cipher, principal, key, body),
            )
        )
        session.commit()
    except BaseException:
        session.rollback()
        _release(session, principal, key)
        raise
    return StoredResponse(status, body, replayed=False)


def run_in_transaction(
    session: Session,
    *,
    principal: str,
    key: str | None,
    method: str,
    path: str,
    payload: Any,
    work: Callable[[], tuple[int, Any]],
    cipher: PiiCipher,
) -> StoredResponse:
    """`run` in one transaction and one commit, for burst paths: the key's row is inserted,
    done, with the work and its answer. A duplicate running at the same time waits on that
    row's primary key and then replays the first answer (its own work is rolled back); a
    crash leaves no claim behind. Same answers as `run` otherwise."""
    if key is None:
        return run(
            session, principal=principal, key=None, method=method, path=path, payload=payload,
            work=work, cipher=cipher,
        )  # fmt: skip
    if not key or len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyReusedError(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters")
    digest = request_hash(method, path, payload)
    earlier = _stored(session, principal, key)
    if earlier is not None:
        return _answer(cipher, earlier, digest, key)
    try:
        status, body = work()
        body = jsonable_encoder(body)
        now = utcnow()
        session.add(
            IdempotencyKey(
                principal=principal,
                key=key,
                method=method,
                path=path,
                request_hash=digest,
                state="done",
                response_status=status,
                response_enc=seal(cipher, principal, key, body),
                created_at=now,
                claimed_at=now,
            )
        )
        session.flush()
        session.commit()
    except Exception:
        session.rollback()
        # A duplicate that committed while this one ran (this one then met its seat, its
        # member row or its key): the client gets the first answer, as with `run`.
        earlier = _stored(session, principal, key)
        if earlier is None:
            raise
        return _answer(cipher, earlier, digest, key)
    except BaseException:
        session.rollback()
        raise
    return StoredResponse(status, body, replayed=False)


def _stored(session: Session, principal: str, key: str) -> IdempotencyKey | None:
    return session.scalars(
        select(IdempotencyKey)
        .where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
        .execution_options(populate_existing=True)
    ).one_or_none()


def stored_answer(
    session: Session, cipher: PiiCipher, principal: str, key: str, digest: str
) -> StoredResponse | None:
    """The answer stored under the key (None if none yet), for a request of this digest
    (IdempotencyKeyReusedError for another request; in progress: 409)."""
    earlier = _stored(session, principal, key)
    return None if earlier is None else _answer(cipher, earlier, digest, key)


def _answer(cipher: PiiCipher, earlier: IdempotencyKey, digest: str, key: str) -> StoredResponse:
    if earlier.request_hash != digest:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request", key=key
        )
    if earlier.state == "done" and earlier.response_status is not None:
        return StoredResponse(earlier.response_status, stored_body(cipher, earlier), replayed=True)
    raise IdempotencyInProgressError("a request with this key is still running", key=key)


def _claim(session: Session, values: dict[str, Any], stale_after_s: int) -> bool:
    conn = _separate(session)
    stale = values["claimed_at"] - timedelta(seconds=stale_after_s)
    take_over = (
        update(IdempotencyKey)
        .where(
            IdempotencyKey.principal == values["principal"],
            IdempotencyKey.key == values["key"],
            IdempotencyKey.state == "in_progress",
            IdempotencyKey.request_hash == values["request_hash"],
            IdempotencyKey.claimed_at < stale,
        )
        .values(claimed_at=values["claimed_at"])
    )
    if conn is None:
        with session.begin_nested():
            if _insert(session, values):
                return True
            return bool(session.execute(take_over).rowcount)  # type: ignore[attr-defined]
    with conn, conn.begin():
        if _insert(conn, values):
            return True
        # A claim left by a crashed request (never completed) may be taken over.
        return bool(conn.execute(take_over).rowcount)


def _release(session: Session, principal: str, key: str) -> None:
    stmt = delete(IdempotencyKey).where(
        IdempotencyKey.principal == principal,
        IdempotencyKey.key == key,
        IdempotencyKey.state == "in_progress",
    )
    conn = _separate(session)
    if conn is None:
        session.execute(stmt)
        session.commit()
        return
    with conn, conn.begin():
        conn.execute(stmt)


def purge_expired(session: Session, ttl_s: int) -> int:
    """Forget keys older than the TTL (a beat job); clients must not reuse keys after that."""
    result = session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.created_at < utcnow() - timedelta(seconds=ttl_s)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
