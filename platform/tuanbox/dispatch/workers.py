"""The bridge's inbound workers: each applies the messages of its inbox in batches (one
transaction, then a PUBACK for each message).

A message that fails to apply is retried in place. Transient failures (the DB is away) are
not counted; any other failure is counted in ``inbound_failures`` under the message's
identity, and after ``bridge_max_apply_attempts`` of them the message becomes a dead letter:
kept there with its payload and error, reported as a critical ops alert, and acknowledged,
because an unacknowledged message holds one of the broker's few in-flight slots for this
client and a handful of such poison messages would stall all inbound traffic.

A message the contract refuses (bad JSON, a seq or compartment out of range) from a locker
the platform knows is never applied and never dropped silently either: it is kept at once as
a dead letter whose error is the refusal's code and reason, and ops get one alert per locker
while it stays open.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime

import paho.mqtt.client as mqtt
import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.envelopes import decode_event
from edge.protocol.errors import ProtocolError
from edge.protocol.topics import parse_topic
from tuanbox.db.engine import session_scope
from tuanbox.dispatch.applying import BatchApplier
from tuanbox.dispatch.failures import record_failure
from tuanbox.dispatch.models import InboundFailure
from tuanbox.dispatch.stats import BridgeStats
from tuanbox.fulfilment.alerts import open_alert
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.bridge")
# In-place retries of a transiently failing message (about a minute with the backoff) before
# it is left unacknowledged for the broker to redeliver after a reconnect.
TRANSIENT_RETRIES = 20
DEAD_LETTER_NEXT_STEP = (
    "Fix the cause, then replay the payload kept in inbound_failures under this key, "
    "or apply its effect by hand; the locker will not send it again."
)


class InboundWorkers:
    """The apply-and-acknowledge loop every inbound worker thread runs, over its own inbox."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        applier: BatchApplier,
        client: mqtt.Client,
        stats: BridgeStats,
        *,
        clock: Callable[[], datetime],
        stop: threading.Event,
        settled: Callable[[], None],
        batch_size: int,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.applier = applier
        self.client = client
        self.stats = stats
        self.clock = clock
        self.inbound_batch = batch_size
        self._stop = stop
        # Called when a batch moved commands: they may have opened the in-flight window.
        self._settled = settled
        self._stats_lock = threading.Lock()

    def run(self, inbox: queue.Queue[mqtt.MQTTMessage]) -> None:
        """Apply one worker's queued messages in batches: one transaction, then PUBACK each.

        Workers run side by side, each on lockers of its own: their PUBACKs interleave, which
        the broker accepts (it matches a PUBACK to its message by packet id)."""
        while not self._stop.is_set():
            try:
                batch = [inbox.get(timeout=0.2)]
            except queue.Empty:
                continue
            while len(batch) < self.inbound_batch:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            began = time.perf_counter()
            self._apply_batch(batch)
            with self._stats_lock:
                self.stats.inbound_s += time.perf_counter() - began

    def _apply_batch(self, batch: list[mqtt.MQTTMessage]) -> None:
        if len(batch) == 1:
            self._apply_alone(batch[0])
            return
        try:
            self._commit(batch)
        except Exception:
            # One bad message must not hold back the others: retry them one by one.
            log.warning("applying a batch failed", extra={"size": len(batch)}, exc_info=True)
            for msg in batch:
                self._apply_alone(msg)

    def _apply_alone(self, msg: mqtt.MQTTMessage) -> None:
        """Apply one message, retrying in place: Mosquitto redelivers an unacknowledged
        message only after a reconnect, so waiting for the broker would hold it forever."""
        transient = 0
        while not self._stop.is_set():
            try:
                self._commit([msg])
                return
            except Exception as exc:
                # Supervisor boundary: whatever the failure, the bridge goes on.
                extra = {"topic": msg.topic, "mid": msg.mid}
                if is_transient(exc):
                    transient += 1
                    if transient > TRANSIENT_RETRIES:
                        log.exception("message still failing, left for redelivery", extra=extra)
                        return
                    log.warning("transient failure applying a message", extra=extra, exc_info=True)
                    self._stop.wait(min(0.05 * 2**transient, 3.0))
                    continue
                log.exception("applying a message failed", extra=extra)
                try:
                    dead = self._record_failure(msg, exc)
                except Exception:
                    log.exception("recording a failure failed, message left unacked", extra=extra)
                    return
                if dead:
                    with self._stats_lock:
                        self.stats.dead_letters += 1
                    self.client.ack(msg.mid, msg.qos)
                    return
        # Stopping: unacknowledged, so the broker hands it to us again after a reconnect.

    def _commit(self, batch: list[mqtt.MQTTMessage]) -> None:
        """Apply messages in one transaction, then acknowledge each of them."""
        outcome = self.applier.apply(batch)
        with self._stats_lock:  # several inbound workers count into one set of figures
            for key, value in outcome.counts.items():
                setattr(self.stats, key, getattr(self.stats, key) + value)
            for kind, value in outcome.kinds.items():
                self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + value
            self.stats.batches += 1
        for msg in batch:
            self.client.ack(msg.mid, msg.qos)
        if outcome.moved:
            self._settled()

    def _record_failure(self, msg: mqtt.MQTTMessage, exc: Exception) -> bool:
        """Count one failure in a transaction of its own (the message's was rolled back);
        True once the message is a dead letter and may be acknowledged."""
        key, locker_id = message_identity(msg)
        error = f"{type(exc).__name__}: {exc}"
        now = self.clock()
        limit = self.settings.bridge_max_apply_attempts
        with session_scope(self.session_factory) as session:
            attempts, dead_at = record_failure(
                session,
                key=key,
                topic=msg.topic,
                locker_id=locker_id,
                payload=bytes(msg.payload),
                error=error,
                now=now,
            )
            extra = {"topic": msg.topic, "key": key, "attempts": attempts, "max": limit}
            if dead_at is not None:
                # A copy of a message already given up on (redelivered, or the other bridge's).
                log.warning("dead letter delivered again", extra=extra)
                return True
            if attempts < limit:
                return False
            session.execute(
                update(InboundFailure).where(InboundFailure.key == key).values(dead_lettered_at=now)
            )
            open_alert(
                session,
                kind="inbound_dead_letter",
                severity="critical",
                locker_id=locker_id,
                compartment_id=None,
                detail=f"{msg.topic} ({key}) failed {attempts} times, last: {error}",
                next_step=DEAD_LETTER_NEXT_STEP,
            )
        log.error("message dead-lettered", extra=extra)
        return True


def is_transient(exc: BaseException) -> bool:
    """A failure that says nothing about the message (the DB connection or server went away)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa_exc.OperationalError, psycopg.OperationalError))


def message_identity(msg: mqtt.MQTTMessage) -> tuple[str, str | None]:
    """The key redeliveries of one message share, and the locker it came from (if any)."""
    payload = bytes(msg.payload)
    try:
        locker_id: str | None
        locker_id, kind = parse_topic(msg.topic)
    except ProtocolError:
        locker_id, kind = None, None
    if kind == "evt":
        try:
            event = decode_event(payload)
        except ProtocolError:
            pass
        else:
            return f"evt:{event.locker_id}:{event.seq}", locker_id
    return f"{msg.topic}#{hashlib.sha256(payload).hexdigest()}", locker_id
