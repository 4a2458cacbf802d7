"""Applying a batch of inbound messages to the database: the bridge's inbound workers call
`BatchApplier.apply` once a batch, and acknowledge the messages to the broker after it.

A batch of nothing but plain acks (`accepted`, `done`) is one statement in autocommit on
PostgreSQL (`dispatch.acks`); any other batch is one transaction, in which events, states and
statuses are applied in the order they arrived, then the batch's acks at once."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import paho.mqtt.client as mqtt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.envelopes import Ack, decode_ack, decode_event, decode_state, decode_status
from edge.protocol.errors import ProtocolError
from edge.protocol.topics import parse_topic
from tuanbox.db.engine import bind_settings, session_scope
from tuanbox.dispatch import outbox
from tuanbox.dispatch.acks import PLAIN, apply_acks_at_once
from tuanbox.dispatch.failures import record_failure
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment import inbound, lifecycle
from tuanbox.fulfilment.alerts import open_alert
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.models import Locker
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.bridge")
# Acks move a locker's last_seen_at only when it is older than this (or the locker is marked
# offline): in a burst, writing the same lockers' rows again in every batch doubled the rows
# each batch wrote, for a time that only has to be fresh against locker_offline_after_s.
LAST_SEEN_GRAIN_S = 5.0


@dataclass
class Outcome:
    """What a batch did: the stats fields to count, the message kinds, the commands moved."""

    counts: Counter[str]
    kinds: Counter[str]
    moved: list[outbox.Moved]


class BatchApplier:
    """Applies batches of inbound messages; shared by the inbound workers (no state of its
    own beyond its settings and the database it writes to)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        ctx: lifecycle.Context,
        clock: Callable[[], datetime],
        autocommit: Engine | None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.ctx = ctx
        self.clock = clock
        # PostgreSQL's engine in autocommit, for a batch of plain acks; None elsewhere.
        self._autocommit = autocommit

    def apply(self, batch: list[mqtt.MQTTMessage]) -> Outcome:
        """Apply messages in one transaction (or one statement, for plain acks)."""
        counts: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        plain = self._plain_acks(batch)
        if plain is not None:
            moved = self._commit_plain_acks(plain)
            counts["acks"] = kinds["ack"] = len(plain)
        else:
            with session_scope(self.session_factory) as session:
                bind_settings(session, self.settings)
                now = self.clock()
                acks: list[tuple[str, Ack]] = []
                for msg in batch:
                    counts[self._apply_one(session, msg, now, acks, kinds)] += 1
                # Acks of the whole batch at once (they commute with the rest).
                moved = self._apply_acks(session, acks, now)
                for failed in (m.id for m in moved if m.status in inbound.SETTLED_WITH_ALERT):
                    command = session.get(OutboxCommand, failed, populate_existing=True)
                    if command is not None:
                        inbound.command_settled(session, command)
        return Outcome(counts, kinds, moved)

    def _plain_acks(self, batch: list[mqtt.MQTTMessage]) -> list[tuple[str, Ack]] | None:
        """The batch's acks when it holds nothing else, all valid, all `accepted` or `done`
        (they settle nothing beyond their commands' rows), on PostgreSQL; None otherwise."""
        if self._autocommit is None:
            return None
        plain: list[tuple[str, Ack]] = []
        try:
            for msg in batch:
                locker_id, kind = parse_topic(msg.topic)
                if kind != "ack":
                    return None
                ack = decode_ack(bytes(msg.payload))
                if ack.status not in PLAIN:
                    return None
                plain.append((locker_id, ack))
        except ProtocolError:
            return None  # refused in the batch's transaction, as any message is
        return plain

    def _commit_plain_acks(self, plain: list[tuple[str, Ack]]) -> list[outbox.Moved]:
        """A batch of plain acks: one statement in autocommit (its own transaction), and the
        lockers it found offline brought back in a transaction after it, before any PUBACK
        (a crash in between redelivers the acks: they move nothing again, and the lockers
        are found offline again)."""
        assert self._autocommit is not None
        now = self.clock()
        with self._autocommit.connect() as conn:
            applied = apply_acks_at_once(
                conn,
                plain,
                now=now,
                accepted_timeout_s=self.settings.command_accepted_timeout_s,
                grain_s=last_seen_grain_s(self.settings),
            )
        if applied.offline:
            with session_scope(self.session_factory) as session:
                bind_settings(session, self.settings)
                inbound.heard_from_many(session, applied.offline, now=now)
        return applied.moved

    def _apply_acks(
        self, session: Session, batch: list[tuple[str, Ack]], now: datetime
    ) -> list[outbox.Moved]:
        """A batch's acks in its transaction, and their lockers heard from: one statement on
        PostgreSQL, `outbox.apply_acks` and `inbound.heard_from_many` elsewhere."""
        grain_s = last_seen_grain_s(self.settings)
        timeout_s = self.settings.command_accepted_timeout_s
        if self._autocommit is None:
            moved = outbox.apply_acks(session, batch, now=now, accepted_timeout_s=timeout_s)
            lockers = [locker for locker, _ in batch]
            inbound.heard_from_many(session, lockers, now=now, grain_s=grain_s)
            return moved
        applied = apply_acks_at_once(
            session, batch, now=now, accepted_timeout_s=timeout_s, grain_s=grain_s
        )
        inbound.heard_from_many(session, applied.offline, now=now)
        return applied.moved

    def _apply_one(
        self,
        session: Session,
        msg: mqtt.MQTTMessage,
        now: datetime,
        acks: list[tuple[str, Ack]],
        kinds: Counter[str],
    ) -> str:
        """Apply one message in the batch's transaction; return the stats field to count."""
        try:
            locker_id, kind = parse_topic(msg.topic)
            payload = bytes(msg.payload)
            kinds[kind] += 1
            if kind == "evt":
                event = decode_event(payload)
                if event.locker_id != locker_id:
                    raise ProtocolError("event locker id differs from its topic", code="BAD_TOPIC")
                outcome = inbound.apply_event(session, event, ctx=self.ctx, now=now)
                counted = {"applied": "applied", "duplicate": "duplicates", "reused": "reused_seqs"}
                return counted.get(outcome, "unknown")
            if kind == "ack":
                acks.append((locker_id, decode_ack(payload)))
                return "acks"
            if kind == "state":
                snapshot = decode_state(payload)
                if snapshot.locker_id != locker_id:
                    raise ProtocolError("state locker id differs from its topic", code="BAD_TOPIC")
                inbound.apply_state(session, snapshot, settings=self.settings, now=now)
                return "states"
            status = decode_status(payload)
            inbound.apply_status(session, locker_id, status, settings=self.settings, now=now)
            return "statuses"
        except ProtocolError as exc:
            # Refused messages never become valid, and are refused before any DB write of
            # theirs: kept as a dead letter with the reason, acknowledged with the batch.
            log.warning("refused a message", extra={"topic": msg.topic, "error": str(exc)})
            return "rejected_messages" if self._refuse(session, msg, exc, now) else "unknown"

    def _refuse(
        self, session: Session, msg: mqtt.MQTTMessage, exc: ProtocolError, now: datetime
    ) -> bool:
        """Keep a message the contract refuses, with its reason; alert once per locker.

        Like its valid messages, those of a locker this platform does not know are only
        logged (False): they are no business of ours, and must not reach ops here."""
        payload = bytes(msg.payload)
        try:
            locker_id = parse_topic(msg.topic)[0]
        except ProtocolError:
            return False
        if session.get(Locker, locker_id) is None:
            return False
        attempts, _ = record_failure(
            session,
            key=f"refused:{msg.topic}#{hashlib.sha256(payload).hexdigest()}",
            topic=msg.topic,
            locker_id=locker_id,
            payload=payload,
            error=f"{exc.code}: {exc.message}",
            now=now,
            dead_letter=True,
        )
        if attempts > 1:
            return True  # a copy of one already kept
        already = session.scalars(
            select(OpsAlert.id).where(
                OpsAlert.kind == "inbound_rejected",
                OpsAlert.locker_id == locker_id,
                OpsAlert.status != "resolved",
            )
        ).first()
        if already is None:
            open_alert(
                session,
                kind="inbound_rejected",
                severity="critical" if msg.topic.endswith("/evt") else "warning",
                locker_id=locker_id,
                compartment_id=None,
                detail=f"{msg.topic}: refused, {exc.code}: {exc.message}",
            )
        return True


def last_seen_grain_s(settings: Settings) -> float:
    """How stale a locker's ``last_seen_at`` may get before an ack moves it again: a tenth of
    the time after which a silent locker counts as offline, at most LAST_SEEN_GRAIN_S."""
    return min(LAST_SEEN_GRAIN_S, settings.locker_offline_after_s / 10)
