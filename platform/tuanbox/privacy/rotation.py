"""Re-encrypting personal data under the current PII key: in batches, resumable, concurrent-safe.

A sweep (one `PiiRotation` row per key id) walks each table holding ciphertext in primary-key
order. A batch reads rows still under another key id (or, from before migration 0018, in
clear), decrypts and re-encrypts them, and writes each with a compare-and-set: the UPDATE
names the old ciphertext, so a row a normal request rewrote meanwhile (under the current key)
is left alone, never clobbered with an older value. Phones are re-indexed with the new key's
blind index in the same UPDATE (lookups match every configured key's index until then).
Reads never stop: every configured key still decrypts while the sweep runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuanbox.audit.services import Actor, record
from tuanbox.crypto import PiiCipher, PiiDecryptError
from tuanbox.db.base import utcnow
from tuanbox.privacy.models import PiiRotation
from tuanbox.privacy.targets import TARGETS, Plan, Rewrite, Target
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.privacy.rotation")

SYSTEM = Actor(id="system:privacy", role="system")


def plan(session: Session, cipher: PiiCipher, target: Target, cursor: Any, limit: int) -> Plan:
    """Read one batch of stale rows after `cursor` and work out their new values."""
    out = Plan(last=cursor)
    for row in target.rows(session, f"{cipher.key_id}:", cursor, limit):
        out.scanned += 1
        out.last = target.cursor_of(row)
        try:
            rewrite = target.rewrite(cipher, row)
        except PiiDecryptError:
            out.failed.append(target.label(row))
            continue
        if rewrite is not None:
            out.rewrites.append(rewrite)
    return out


def apply(session: Session, rewrites: Sequence[Rewrite]) -> tuple[int, int, list[str]]:
    """Write each rewrite if its row still holds what was read: (changed, skipped, failed)."""
    changed = skipped = 0
    failed: list[str] = []
    for rw in rewrites:
        columns = {name: getattr(rw.model, name) for name in rw.expect}
        condition = and_(
            *(
                columns[name].is_(None) if value is None else columns[name] == value
                for name, value in rw.expect.items()
            )
        )
        # ORM-enabled, so objects of this session see the new values too.
        statement = update(rw.model).where(condition).values(**rw.values)
        try:
            # A phone's new index may clash with another account's (pre-E.164 duplicates).
            with session.begin_nested():
                count = int(session.execute(statement).rowcount)  # type: ignore[attr-defined]
        except IntegrityError:
            failed.append(str(rw.expect.get("id", rw.expect.get("principal"))))
            continue
        changed += count
        skipped += 1 - count
    return changed, skipped, failed


def rotate_once(session: Session, settings: Settings, *, batch: int = 500) -> int:
    """One batch of every table from the start, without a sweep row; rows changed.

    For callers that loop until 0 (`tuanbox users rotate-pii`); sweeps use `step`."""
    cipher = PiiCipher(settings)
    changed = 0
    for target in TARGETS:
        found = plan(session, cipher, target, None, batch)
        changed += apply(session, found.rewrites)[0]
    return changed


@dataclass(frozen=True)
class Step:
    """What one batch of a sweep did."""

    key_id: str
    target: str | None
    scanned: int = 0
    changed: int = 0
    skipped: int = 0
    failed: int = 0
    done: bool = False
    remaining: int | None = None


def _insert_run(session: Session, key_id: str, actor: Actor) -> bool:
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    inserted = session.execute(
        insert(PiiRotation)
        .values(key_id=key_id, started_at=now, updated_at=now, started_by=actor.id[:64],
                cursors={}, rotated=0, skipped=0, failed=0)
        .on_conflict_do_nothing(index_elements=["key_id"])
        .returning(PiiRotation.key_id)
    ).first()  # fmt: skip
    return inserted is not None


def start(
    session: Session, settings: Settings, actor: Actor, *, restart: bool = False
) -> PiiRotation:
    """The sweep to the current key, created (audited) if there is none; `restart` sweeps a
    finished one again (rows written meanwhile by a process still on the old key)."""
    key_id = settings.pii_key_id
    created = _insert_run(session, key_id, actor)
    run = session.get(PiiRotation, key_id, with_for_update=True, populate_existing=True)
    assert run is not None
    if not created and restart and run.finished_at is not None:
        run.cursors, run.finished_at, run.remaining = {}, None, None
        run.rotated = run.skipped = run.failed = 0
        run.started_at, run.started_by = utcnow(), actor.id[:64]
        created = True
    if created:
        record(session, actor, "pii.rotate.start", "pii_key", key_id,
               details={"key_ids": sorted(PiiCipher(settings).key_ids)})  # fmt: skip
        log.info("pii rotation started", extra={"key_id": key_id, "actor": actor.id})
    session.flush()
    return run


def remaining(session: Session, settings: Settings) -> dict[str, int]:
    """Rows per table still under another key id or in clear (a full scan)."""
    prefix = f"{settings.pii_key_id}:"
    out = {}
    for target in TARGETS:
        query = select(func.count()).select_from(target.table).where(target.stale(prefix))
        out[target.name] = int(session.scalar(query) or 0)
    return out


def step(
    session: Session, settings: Settings, actor: Actor = SYSTEM, *, batch: int | None = None
) -> Step:
    """Do the next batch of the current key's sweep (starting it if need be); the caller
    commits. Returns `done` once every table is through (then nothing more to do)."""
    cipher = PiiCipher(settings)
    limit = batch or settings.pii_rotate_batch
    run = start(session, settings, actor)  # locks the sweep row until the caller commits
    if run.finished_at is not None:
        return Step(run.key_id, None, done=True, remaining=run.remaining)
    cursors = dict(run.cursors or {})
    target = next((t for t in TARGETS if not cursors.get(t.name, {}).get("done")), None)
    if target is None:
        return _finish(session, settings, run, actor)
    state = cursors.get(target.name, {})
    found = plan(session, cipher, target, state.get("after"), limit)
    changed, skipped, clashed = apply(session, found.rewrites)
    failed = found.failed + clashed
    for label in failed:
        log.warning("pii rotation: row left as it is",
                    extra={"key_id": run.key_id, "table": target.name, "row": label})  # fmt: skip
    cursors[target.name] = {"after": found.last, "done": found.scanned < limit}
    run.cursors = cursors
    run.rotated += changed
    run.skipped += skipped
    run.failed += len(failed)
    run.updated_at = utcnow()
    log.info(
        "pii rotation batch",
        extra={"key_id": run.key_id, "table": target.name, "scanned": found.scanned,
               "changed": changed, "skipped": skipped, "failed": len(failed),
               "rotated_total": run.rotated},
    )  # fmt: skip
    session.flush()
    return Step(run.key_id, target.name, found.scanned, changed, skipped, len(failed))


def _finish(session: Session, settings: Settings, run: PiiRotation, actor: Actor) -> Step:
    left = sum(remaining(session, settings).values())
    run.finished_at = run.updated_at = utcnow()
    run.remaining = left
    record(session, actor, "pii.rotate.finish", "pii_key", run.key_id,
           details={"rotated": run.rotated, "skipped": run.skipped, "failed": run.failed,
                    "remaining": left})  # fmt: skip
    log.info("pii rotation finished",
             extra={"key_id": run.key_id, "rotated": run.rotated, "remaining": left})  # fmt: skip
    session.flush()
    return Step(run.key_id, None, done=True, remaining=left)


def sweep(
    open_session: Callable[[], Any],
    settings: Settings,
    actor: Actor = SYSTEM,
    *,
    batch: int | None = None,
    until: Callable[[], bool] = lambda: False,
    progress: Callable[[Step], None] | None = None,
) -> Step:
    """Run batches, each in its own transaction (`open_session()` is a unit of work), until
    the sweep is done or `until()` says stop; the last step says which."""
    while True:
        with open_session() as session:
            done = step(session, settings, actor, batch=batch)
        if progress is not None:
            progress(done)
        if done.done or until():
            return done
