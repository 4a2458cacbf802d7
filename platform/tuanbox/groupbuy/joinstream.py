"""Stream join writes: `tuanbox group-joins` writes admitted joins from the joins stream.

With TUANBOX_GROUP_JOIN_WRITES=stream the join route admits a shopper in one Redis script
(`groupbuy.seatlua`), which takes the seat and queues the join on the joins stream in the
same step, and answers 202 with the reservation. This consumer reads the stream in one
consumer group and writes each batch in one DB transaction: per join (a SAVEPOINT each) the
risk screen, the same `services.join_group` use case as the request path (guarded seat
UPDATE, quota, stock pool, order, member, transition) and the stored answer under the
shopper's Idempotency-Key; then it acknowledges and deletes the entries. What every join
would read on its own is read once for the batch (its groups and campaigns, the accounts'
sticky risk keys) and the stored answers go in one multi-row INSERT at the end; a seat
refusal on a group read at the batch's start is decided again on a fresh read, so the
answers are those of writing the joins one by one (`tests/.../test_join_batch.py`). A
campaign paused during a batch is seen by the next batch (as before: its first join
cached it for the batch). A join the
database refuses (group closed meanwhile, quota, risk block) stores its refusal as the
key's answer and gives its seat back in Redis after the commit.

Exactly once: the stored answer (UNIQUE principal, key) is the marker. An entry delivered
again (a consumer died after its commit, before its ack) finds its answer and is only
acknowledged (a refusal's seat is released again: that is idempotent); two consumers racing
on one entry meet at the key's primary key and the loser's batch is retried. Entries left
pending by a dead consumer are claimed after `group_join_claim_idle_s`; a restarted
consumer of the same name takes its own back at once. Every `reconcile_every_s` the
consumer also reconciles the groups Redis holds with the database (`groupbuy.seats`).
Until its batch commits, an admitted join exists only in Redis: it survives what Redis's
persistence survives (AOF), not more (as flash-sale orders on their stream).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from fastapi.encoders import jsonable_encoder
from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from tuanbox.crypto import PiiCipher
from tuanbox.db.base import utcnow
from tuanbox.errors import ConflictError, TuanboxError
from tuanbox.groupbuy import seatlua, services
from tuanbox.groupbuy.seats import GroupSeats, Join, prefix_of, reconcile_loaded
from tuanbox.idempotency.models import IdempotencyKey
from tuanbox.idempotency.services import seal
from tuanbox.membership.pricing import DeliveryTerms
from tuanbox.settings import Settings
from tuanbox.worker.streams import poll_until

log = logging.getLogger("tuanbox.groupbuy.joins")

GROUP = "writers"
PATH = "/api/v1/groups/{group_id}/join"


def parse(entry_id: bytes | str, fields: dict[bytes, bytes]) -> tuple[str, Join]:
    f = {k.decode(): v.decode() for k, v in fields.items()}
    return (
        entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
        Join(
            group_id=f["group"],
            user_id=f["user"],
            request_id=f["req"],
            qty=int(f["qty"]),
            reservation_id=f["rid"],
            station_id=f["station"] or None,
            ip=f["ip"] or None,
            device=f["device"] or None,
            key=f["key"],
            digest=f["digest"],
        ),
    )


@dataclass
class Written:
    """What one batch did: joins written, refused (seat given back), redeliveries skipped."""

    written: int = 0
    refused: int = 0
    duplicates: int = 0
    to_release: list[Join] | None = None


Sticky = tuple[tuple[str, ...], tuple[str, ...]]


def _screen(session: Session, settings: Settings, join: Join, sticky: Sticky | None) -> Any:
    """`risk.services.before_order` for a queued join (its IP and device arrive as blind
    indexes); returns (screening, refusal). A block is filed and refuses the join.
    `sticky`: the account's addresses and payers as read for the batch (a join records
    only keys the account already has, so the batch's own joins do not change them)."""
    from tuanbox.risk import signals
    from tuanbox.risk.decisions import file_review, screen, user_key
    from tuanbox.risk.errors import RiskBlockedError
    from tuanbox.risk.rules import Action, Event

    addresses, payers = sticky if sticky is not None else signals.sticky_keys(session, join.user_id)
    keys = signals.Keys(
        join.user_id, ip=join.ip, device=join.device, addresses=addresses, payers=payers
    )
    screening = screen(
        session, settings, Event.JOIN, keys, subject_key=user_key(join.user_id, Event.JOIN)
    )
    if screening is None or screening.action is not Action.BLOCK:
        return screening, None
    review = file_review(
        session,
        subject_type="user",
        subject_id=join.user_id,
        event=Event.JOIN,
        user_id=join.user_id,
        decided=screening.verdict,
    )
    refusal = RiskBlockedError(
        "refused by risk control; quote the reference to customer service", reference=review.id
    )
    return screening, refusal


def write_one(
    session: Session,
    settings: Settings,
    join: Join,
    sticky: Sticky | None = None,
    *,
    prefetched: bool = False,
) -> tuple[int, Any]:
    """One join in its own SAVEPOINT: (status, answer). A refusal rolls the join back (a
    risk block keeps its signals and review, as the request path commits them).

    `prefetched`: the join's group was read with the batch's, before this join; a seat
    refusal (full or closed) is then decided again on a fresh read of the group, so a
    group closed since the batch began is refused as the per-join path refuses it."""
    from tuanbox.groupbuy.domain import GroupClosedError, GroupFullError
    from tuanbox.groupbuy.models import Group
    from tuanbox.groupbuy.views import joined_out
    from tuanbox.orders.models import Order
    from tuanbox.risk.services import after_order

    savepoint = session.begin_nested()
    try:
        screening, refusal = _screen(session, settings, join, sticky)
        if refusal is not None:
            savepoint.commit()
            return refusal.status, refusal.problem(PATH.format(group_id=join.group_id))
        joined = services.join_group(
            session,
            group_id=join.group_id,
            user_id=join.user_id,
            qty=join.qty,
            station_id=join.station_id,
            now=utcnow(),
            pay_timeout_s=settings.order_pay_timeout_s,
            delivery=DeliveryTerms.of(settings),
        )
        order = joined.order or session.get(Order, joined.order_id)
        assert order is not None
        after_order(session, screening, order)
        body = joined_out(session, settings, joined)
        savepoint.commit()
        return 201, body
    except TuanboxError as exc:
        savepoint.rollback()
        if exc.status >= 500:
            raise
        group = session.identity_map.get(identity_key(Group, join.group_id))
        if prefetched and isinstance(exc, GroupFullError | GroupClosedError) and group:
            session.expire(group)
            return write_one(session, settings, join, sticky)
        return exc.status, exc.problem(PATH.format(group_id=join.group_id))
    except IntegrityError as exc:
        # A constraint the use case does not translate (say the account is gone): this join
        # is refused, not retried forever, and the rest of the batch goes on.
        savepoint.rollback()
        log.error(
            "group join refused by the database; seat given back",
            extra={"group": join.group_id, "error": str(exc.orig)},
        )
        refused = ConflictError("the database refused this join")
        return refused.status, refused.problem(PATH.format(group_id=join.group_id))


def write_batch(session: Session, settings: Settings, batch: list[Join]) -> Written:
    """Write the batch in the session's transaction (the caller commits); a join whose
    answer is already stored is skipped (a refused one is released again)."""
    out = Written(to_release=[])
    assert out.to_release is not None
    rows = session.execute(
        select(IdempotencyKey.principal, IdempotencyKey.key, IdempotencyKey.response_status).where(
            tuple_(IdempotencyKey.principal, IdempotencyKey.key).in_(
                [(j.user_id, j.key) for j in batch]
            )
        )
    ).all()
    stored = {(principal, key): status for principal, key, status in rows}
    fresh = [j for j in batch if (j.user_id, j.key) not in stored]
    # Read once for the batch what each join would read on its own: the groups and their
    # campaigns (into the identity map: `join_group` finds them there) and the accounts'
    # sticky risk keys. `loaded` keeps the objects referenced (the map holds them weakly).
    loaded, sticky = _prefetch(session, fresh)
    cipher = PiiCipher(settings)
    seen: set[tuple[str, str]] = set()
    answers: list[dict[str, Any]] = []
    for join in batch:
        marker = (join.user_id, join.key)
        if marker in stored or marker in seen:
            out.duplicates += 1
            status = stored.get(marker)
            if status is not None and status >= 400:
                out.to_release.append(join)
            continue
        seen.add(marker)
        status, body = write_one(
            session,
            settings,
            join,
            sticky.get(join.user_id),
            prefetched=join.group_id in loaded,
        )
        body = jsonable_encoder(body)
        now = utcnow()
        answers.append(
            {
                "principal": join.user_id,
                "key": join.key,
                "method": "POST",
                "path": PATH.format(group_id=join.group_id),
                "request_hash": join.digest,
                "state": "done",
                "response_status": status,
                "response_enc": seal(cipher, join.user_id, join.key, body),
                "created_at": now,
                "claimed_at": now,
            }
        )
        if status >= 400:
            out.refused += 1
            out.to_release.append(join)
        else:
            out.written += 1
    session.flush()
    if answers:
        # The stored answers in one multi-row INSERT; a key another consumer stored first
        # fails the batch here (UNIQUE principal, key), which is then retried.
        session.execute(insert(IdempotencyKey), answers)
    del loaded
    return out


def _prefetch(session: Session, batch: list[Join]) -> tuple[dict[str, Any], dict[str, Sticky]]:
    from tuanbox.groupbuy.models import Campaign, Group
    from tuanbox.risk.signals import sticky_keys_of

    if not batch:
        return {}, {}
    groups = session.scalars(select(Group).where(Group.id.in_({j.group_id for j in batch}))).all()
    campaigns = session.scalars(
        select(Campaign).where(Campaign.id.in_({g.campaign_id for g in groups}))
    ).all()
    loaded: dict[str, Any] = {g.id: g for g in groups}
    loaded.update({c.id: c for c in campaigns})
    return loaded, sticky_keys_of(session, [j.user_id for j in batch])


class JoinStreamConsumer:
    """Reads the joins stream and writes the joins; one per process, any number of
    processes (each with its own name)."""

    def __init__(
        self,
        client: redis.Redis,
        sessions: Callable[[], Session],
        settings: Settings,
        *,
        name: str | None = None,
        reconcile_every_s: float = 10.0,
    ) -> None:
        self._client = client
        self._sessions = sessions
        self._settings = settings
        self.seats = GroupSeats(client, prefix_of(settings))
        self._key = seatlua.stream_key(prefix_of(settings))
        self.name = name or socket.gethostname()
        self._grouped = False
        self._own_pending = True  # first read: what this name left unacked last time
        self._claimed_at = 0.0
        self._reconcile_every_s = reconcile_every_s
        self._reconciled_at = time.monotonic()

    def poll(self, block_ms: int = 200) -> Written:
        """Claim stale entries, read a batch, write it, acknowledge it; reconcile when due."""
        if not self._grouped:
            self._ensure_group()
        batch = self._claim_stale() or self._read(block_ms)
        done = self._write(batch) if batch else Written()
        if time.monotonic() - self._reconciled_at >= self._reconcile_every_s:
            self.reconcile()
        return done

    def reconcile(self) -> dict[str, Any]:
        self._reconciled_at = time.monotonic()
        with self._sessions() as session:
            return reconcile_loaded(session, self.seats)

    def run(self, stop: Callable[[], bool]) -> None:
        """Poll until `stop()`; a failing step is logged and retried (supervisor loop)."""
        poll_until(
            stop, self.poll, what="group joins stream", after_failure=self._reread_own, logger=log
        )

    def _reread_own(self) -> None:
        self._own_pending = True  # after a failure, this consumer's own pending entries first

    def _ensure_group(self) -> None:
        try:
            self._client.xgroup_create(self._key, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped = True

    def _read(self, block_ms: int) -> list[tuple[str, Join]]:
        if self._own_pending:
            batch = self._xread("0", None)
            if batch:
                return batch
            self._own_pending = False
        return self._xread(">", block_ms)

    def _xread(self, start: str, block_ms: int | None) -> list[tuple[str, Join]]:
        try:
            got = self._client.xreadgroup(
                GROUP,
                self.name,
                {self._key: start},
                count=self._settings.group_join_stream_batch,
                block=block_ms,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._grouped = False  # Redis lost the stream (restart, flush): group again
            return []
        return [parse(i, f) for _, entries in got or [] for i, f in entries if f]

    def _claim_stale(self) -> list[tuple[str, Join]]:
        now = time.monotonic()
        idle_s = self._settings.group_join_claim_idle_s
        if now - self._claimed_at < min(idle_s, 5.0):
            return []
        self._claimed_at = now
        try:
            _, entries, *_ = self._client.xautoclaim(
                self._key,
                GROUP,
                self.name,
                min_idle_time=int(idle_s * 1000),
                count=self._settings.group_join_stream_batch,
            )
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._grouped = False
            return []
        return [parse(i, f) for i, f in entries if f]

    def _write(self, batch: list[tuple[str, Join]]) -> Written:
        joins = [join for _, join in batch]
        try:
            done = self._commit(joins)
        except IntegrityError:
            # Another consumer committed one of these first: again, now skipping it.
            done = self._commit(joins)
        except OperationalError:
            raise  # the DB is away: nothing is acked, the entries stay pending
        for join in done.to_release or []:
            self.seats.release(join.group_id, join.request_id)
        pipe = self._client.pipeline(transaction=False)
        ids = [entry_id for entry_id, _ in batch]
        pipe.xack(self._key, GROUP, *ids)
        pipe.xdel(self._key, *ids)
        pipe.execute()
        return done

    def _commit(self, joins: list[Join]) -> Written:
        with self._sessions() as session:
            try:
                done = write_batch(session, self._settings, joins)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return done


def run_consumer(settings: Settings, *, name: str | None = None) -> None:
    """`tuanbox group-joins`: consume until SIGTERM or SIGINT, finishing the current batch."""
    from tuanbox.worker.streams import run_until_signalled

    run_until_signalled(
        settings,
        lambda client, sessions: JoinStreamConsumer(client, sessions, settings, name=name),
        what="group joins stream consumer",
    )
