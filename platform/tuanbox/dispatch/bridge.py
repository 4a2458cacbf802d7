"""`tuanbox bridge`: the platform's MQTT connection between the outbox, the lockers and the DB.

Inbound (ack, evt, state, status) arrives on MQTT shared subscriptions
(``$share/<group>/tuanbox/v1/lockers/+/<kind>``), so several bridges split the traffic and
each message reaches one of them. Mosquitto 2.0 forgets shared subscriptions when it
restarts, so a *durable* bridge (the default; run exactly one) subscribes with plain
persistent subscriptions instead, which the broker restores and queues for: nothing a
locker sends while the other bridges re-subscribe is lost, and the DB's idempotent apply
absorbs the copies the durable and the shared bridges both receive. Messages are
acknowledged to the broker (manual PUBACK) only after their DB transaction commits; a crash
in between means redelivery, which is harmless because applying is idempotent (events by a
UNIQUE (locker, seq)). The bridge speaks MQTT 5 so that its own Receive Maximum
(``bridge_mqtt_inflight``), not the broker's per-client limit (Mosquitto's
max_inflight_messages, 20 by default), bounds how many messages it holds unacknowledged, and
so how many acks and events one transaction applies.

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

Outbound, a commit that queues commands NOTIFYs the bridges (PostgreSQL), which LISTEN on a
connection of their own and claim at once; they also poll, every ``bridge_poll_s`` or at the
next retry or timeout if sooner, and every 50 ms while no notification can reach them
(SQLite, or the LISTEN connection is being re-established). Every bridge claims due outbox
rows with ``FOR UPDATE SKIP LOCKED``, commits the claim, then publishes at QoS 1; unacked
commands come due again with backoff until they expire, and expiry hands the command to
fulfilment for the ops exception queue. A command acked ``accepted`` that is not finished
within ``command_accepted_timeout_s`` is stalled: fulfilment syncs the locker and alerts
ops, and the bridge re-sends it once (the locker answers a known id with its recorded final
ack, or ``failed INTERRUPTED``).

Client ids: the durable bridge's is stable across restarts (``tuanbox-bridge-<host>``), since
the broker keeps its persistent session under it; a shared bridge's default is unique per
process, with a clean session, so two on one host never take over each other's connection and
a stopped one leaves no session behind to queue messages for it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.envelopes import Ack, decode_ack, decode_event, decode_state, decode_status
from edge.protocol.errors import ProtocolError
from edge.protocol.topics import Kind, parse_topic, shared_subscription, subscription, topic
from tuanbox.db.base import utcnow
from tuanbox.db.engine import bind_settings, session_scope
from tuanbox.dispatch import mqtt5, outbox
from tuanbox.dispatch.acks import PLAIN, apply_acks_at_once
from tuanbox.dispatch.failures import record_failure
from tuanbox.dispatch.listen import OutboxListener
from tuanbox.dispatch.models import InboundFailure, OutboxCommand
from tuanbox.fulfilment import inbound, lifecycle
from tuanbox.fulfilment.alerts import open_alert
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.lockers.models import Locker
from tuanbox.settings import Settings

log = logging.getLogger("tuanbox.bridge")
INBOUND_KINDS: tuple[Kind, ...] = ("ack", "evt", "state", "status")
# In-place retries of a transiently failing message (about a minute with the backoff) before
# it is left unacknowledged for the broker to redeliver after a reconnect.
TRANSIENT_RETRIES = 20
# The outbox poll while no NOTIFY can wake the bridge, and the shortest sleep between passes.
FAST_POLL_S = 0.05
# While passes follow each other (a burst, or commits one after another), expiry and the
# accepted timeout are checked at most this often: they cost a pass three round trips, and half
# a second of lateness means nothing against a TTL of hours and an accepted timeout of minutes.
HOUSEKEEPING_S = 0.5
# MQTT 5 session expiry meaning "never": the broker keeps a persistent bridge's session (its
# subscriptions and the QoS 1 messages queued for it) however long the bridge is away.
SESSION_NEVER_EXPIRES = 0xFFFFFFFF
# Acks move a locker's last_seen_at only when it is older than this (or the locker is marked
# offline): in a burst, writing the same lockers' rows again in every batch doubled the rows
# each batch wrote, for a time that only has to be fresh against locker_offline_after_s.
LAST_SEEN_GRAIN_S = 5.0
DEAD_LETTER_NEXT_STEP = (
    "Fix the cause, then replay the payload kept in inbound_failures under this key, "
    "or apply its effect by hand; the locker will not send it again."
)


@dataclass
class BridgeStats:
    published: int = 0
    received: int = 0  # messages the broker handed over (counted on paho's one thread)
    applied: int = 0
    duplicates: int = 0
    unknown: int = 0  # messages of lockers this platform does not know
    acks: int = 0
    states: int = 0
    statuses: int = 0
    expired: int = 0
    stalled: int = 0
    reused_seqs: int = 0  # different events under an applied seq (not applied, reported)
    rejected_messages: int = 0
    dead_letters: int = 0
    connects: int = 0
    claims: int = 0  # claiming transactions
    batches: int = 0  # inbound transactions committed
    by_kind: dict[str, int] = field(default_factory=dict)
    # Seconds spent in claiming passes, in housekeeping, and applying inbound batches (summed
    # over the inbound workers): where a bridge's time goes, next to the time it waits.
    claim_s: float = 0.0
    housekeeping_s: float = 0.0
    inbound_s: float = 0.0


class Bridge:
    """One bridge process (or thread, in tests and the demo)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        ctx: lifecycle.Context,
        *,
        client_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        poll_s: float | None = None,
        durable: bool | None = None,
        inbound_batch: int = 200,
        inbox_size: int = 10_000,
        inbound_workers: int | None = None,
    ) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.ctx = ctx
        self.clock = clock
        self.poll_s = settings.bridge_poll_s if poll_s is None else poll_s
        self.durable = settings.bridge_durable if durable is None else durable
        self.inbound_batch = inbound_batch
        workers = settings.bridge_inbound_workers if inbound_workers is None else inbound_workers
        # One inbox per inbound worker; a locker's messages all go to the same one (by its id),
        # so each locker's messages are applied in the order they arrived, and the workers'
        # transactions (on disjoint lockers) overlap their round trips and commits.
        self._inboxes: list[queue.Queue[mqtt.MQTTMessage]] = [
            queue.Queue(maxsize=max(inbox_size // workers, 1)) for _ in range(workers)
        ]
        self._stats_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.client_id = client_id or default_client_id(durable=self.durable)
        self.stats = BridgeStats()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Set while the in-flight window (command_max_in_flight) holds due commands back: an
        # ack that settles one then wakes the outbox loop instead of leaving it to the poll.
        self._held_back = False
        # When the earliest retry or accepted timeout comes due, as of the last housekeeping.
        self._due_at: datetime | None = None
        bind = session_factory.kw.get("bind")
        self.listener: OutboxListener | None = None
        # PostgreSQL: statements that are a whole transaction by themselves (the claim, the
        # housekeeping's read, a batch of plain acks) run in autocommit, one round trip each
        # instead of three (BEGIN, the statement, COMMIT): on a loaded box every round trip
        # waits for the bridge's thread and its backend to be scheduled again.
        self._autocommit: Engine | None = None
        if isinstance(bind, Engine) and bind.dialect.name == "postgresql":
            self.listener = OutboxListener(bind, self._wake, self._stop)
            self._autocommit = bind.execution_options(isolation_level="AUTOCOMMIT")
        # Persistent session (no clean start, a session that never expires) under an id that
        # comes back: QoS 1 messages for a restarting bridge wait at the broker. A generated
        # one-off id keeps no session. manual_ack: PUBACK only after our commit.
        self.persistent = client_id is not None or self.durable
        # MQTT 5 for its Receive Maximum: the broker may have this many messages unacknowledged
        # with us (under MQTT 3.1.1 its max_inflight_messages, 20 by default, caps a batch of
        # inbound messages applied in one transaction at 20). Our own publishes are capped the
        # same, and by the broker's Receive Maximum once it connects (see _on_connect).
        mqtt5.share_property_tables()  # paho's per-message tables were a quarter of our CPU
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        self.client.max_inflight_messages_set(settings.bridge_mqtt_inflight)
        if settings.mqtt_username:
            password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
            self.client.username_pw_set(settings.mqtt_username, password)
        if settings.mqtt_tls:
            self.client.tls_set()
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect (asynchronously; paho retries) and run the outbox loop in a thread."""
        properties = Properties(PacketTypes.CONNECT)
        properties.ReceiveMaximum = self.settings.bridge_mqtt_inflight
        if self.persistent:
            properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        # clean_start applies to every reconnect too: a persistent bridge always resumes.
        self.client.connect_async(
            self.settings.mqtt_host,
            self.settings.mqtt_port,
            keepalive=30,
            clean_start=not self.persistent,
            properties=properties,
        )
        self.client.loop_start()
        targets: list[tuple[Callable[[], None], str]] = [(self.run, "outbox")]
        for k, inbox in enumerate(self._inboxes):
            targets.append((functools.partial(self._inbound, inbox), f"inbound{k}"))
        if self.listener is not None:
            targets.append((self.listener.run, "listen"))
        for target, name in targets:
            thread = threading.Thread(target=target, name=f"{self.client_id}-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def run(self) -> None:
        """The outbox loop: claim and publish; expire and stall; until stop()."""
        housekeeping_at = 0.0
        while not self._stop.is_set():
            # Cleared before the pass: a commit notified during it wakes the next one at once.
            self._wake.clear()
            published = 0
            pause = FAST_POLL_S
            try:
                now = self.clock()
                began = time.perf_counter()
                published = self._publish_due(now) if self.connected.is_set() else 0
                claimed_at = time.perf_counter()
                self.stats.claim_s += claimed_at - began
                if time.monotonic() >= housekeeping_at:
                    self._housekeeping(now)
                    housekeeping_at = time.monotonic() + HOUSEKEEPING_S
                    self.stats.housekeeping_s += time.perf_counter() - claimed_at
                pause = self._pause()
            except Exception:
                # Supervisor loop: a DB or broker hiccup must not end the bridge; the rows
                # stay in the outbox and the next tick tries again.
                log.exception("outbox tick failed")
            if published < self.settings.bridge_batch:  # a full batch: more may be due now
                self._wake.wait(pause)

    def _pause(self) -> float:
        """How long to sleep unless notified: the poll interval, or until the next retry or
        accepted timeout; the fast poll while notifications cannot reach us.

        The due time is the last housekeeping's, brought forward by the claims since (their
        retries); whatever else makes a row due sooner (a commit, a locker coming back)
        notifies us. An accepted timeout set since is noticed within the poll interval."""
        if self.listener is None or not self.listener.listening.is_set():
            return min(self.poll_s, FAST_POLL_S)
        due = self._due_at
        if due is None:
            return self.poll_s
        until_due = (due - self.clock()) / timedelta(seconds=1)
        return min(self.poll_s, max(until_due, FAST_POLL_S))

    # --- outbound -------------------------------------------------------------------------

    def tick(self) -> int:
        """One whole pass over the outbox; returns how many commands were published."""
        now = self.clock()
        published = self._publish_due(now) if self.connected.is_set() else 0
        self._housekeeping(now)
        return published

    def _housekeeping(self, now: datetime) -> None:
        """Expire commands past their TTL, stall accepted ones past the accepted timeout (and
        re-send those), and note when the next retry or timeout comes due.

        One read tells whether anything is to expire or stall; only then are those rows
        locked and moved (a pass of a busy bridge is one round trip, not three)."""
        limit = self.settings.bridge_batch
        with self._statement() as session:
            times = outbox.due_times(session)
        if not (
            (times.expiry is not None and times.expiry <= now)
            or (times.stall is not None and times.stall <= now)
        ):
            self._due_at = times.due
            return
        with session_scope(self.session_factory) as session:
            bind_settings(session, self.settings)
            expired = []
            if times.expiry is not None and times.expiry <= now:
                expired = outbox.expire_due(session, now=now, limit=limit)
            for command in expired:
                inbound.command_expired(session, command)
            stalled = []
            if times.stall is not None and times.stall <= now:
                stalled = outbox.stall_due(session, now=now, limit=limit)
            for command in stalled:
                inbound.command_stalled(session, command, settings=self.settings, now=now)
            resend = [(command.locker_id, command.body.encode()) for command in stalled]
            # Stalling moved rows out of "accepted": the next due time is read again then.
            due = outbox.next_due_at(session) if stalled else times.due
        self._due_at = due
        self.stats.expired += len(expired)
        self.stats.stalled += len(stalled)
        if self.connected.is_set():
            for locker_id, body in resend:
                self.client.publish(topic(locker_id, "cmd"), body, qos=1)

    @contextmanager
    def _statement(self) -> Iterator[Session]:
        """A session for one statement that is a transaction by itself: in autocommit on
        PostgreSQL (the claim is one statement there); elsewhere a transaction of its own."""
        if self._autocommit is None:
            with session_scope(self.session_factory) as session:
                yield session
            return
        with self._autocommit.connect() as conn, Session(bind=conn) as session:
            yield session

    def _publish_due(self, now: datetime) -> int:
        """Claim due commands (committed), then publish them; first in a pass, since a
        notified commit waits on it."""
        with self._statement() as session:
            # A window over all bridges: more unacked commands than the broker queues for a
            # slow consumer (Mosquitto drops beyond max_queued_messages) would only come back
            # as retries after the ack timeout. Counted in the claiming statement itself.
            claimed, window = outbox.claim_window(
                session,
                now=now,
                limit=self.settings.bridge_batch,
                ack_timeout_s=self.settings.command_ack_timeout_s,
                retry_max_s=self.settings.command_retry_max_s,
                max_in_flight=self.settings.command_max_in_flight,
            )
        self._held_back = window <= len(claimed)
        if claimed:  # their retries come due an ack timeout from now at the soonest
            retry_at = now + timedelta(seconds=self.settings.command_ack_timeout_s)
            self._due_at = retry_at if self._due_at is None else min(self._due_at, retry_at)
        self.stats.claims += 1
        for item in claimed:
            self.client.publish(topic(item.locker_id, "cmd"), item.body, qos=1)
        self.stats.published += len(claimed)
        return len(claimed)

    # --- inbound --------------------------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.ConnectFlags,
        reason_code: mqtt.ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the bridge", extra={"reason": str(reason_code)})
            return
        # The broker's Receive Maximum (its max_inflight_messages; 65,535 when it names none)
        # should be at least our window: paho cannot narrow a window once connected, and while
        # Mosquitto 2.0 takes QoS 1 publishes beyond it, MQTT 5 lets a broker disconnect us.
        broker_max = getattr(properties, "ReceiveMaximum", 65_535)
        if broker_max < self.settings.bridge_mqtt_inflight:
            log.warning(
                "the broker takes fewer unacknowledged publishes than the bridge sends",
                extra={"broker": broker_max, "bridge": self.settings.bridge_mqtt_inflight},
            )
        if self.durable:
            filters = [subscription(kind) for kind in INBOUND_KINDS]
        else:
            group = self.settings.bridge_share_group
            filters = [shared_subscription(kind, group) for kind in INBOUND_KINDS]
        no_delay(client)
        client.subscribe([(f, 1) for f in filters])
        self.stats.connects += 1
        log.info("bridge connected", extra={"client_id": self.client_id})

    def _on_subscribe(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _mid: int,
        reason_codes: list[mqtt.ReasonCode],
        _properties: mqtt.Properties | None,
    ) -> None:
        # Publishing before our subscriptions stand would let acks slip past us.
        if any(rc.is_failure for rc in reason_codes):
            log.error(
                "broker refused a subscription", extra={"codes": [str(r) for r in reason_codes]}
            )
            return
        self.connected.set()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: object,
        _flags: mqtt.DisconnectFlags,
        reason_code: mqtt.ReasonCode,
        _properties: mqtt.Properties | None,
    ) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("bridge disconnected", extra={"reason": str(reason_code)})

    def inbound_backlog(self) -> int:
        """Messages received and not yet taken up by an inbound worker."""
        return sum(inbox.qsize() for inbox in self._inboxes)

    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        # Bounded hand-over to the locker's inbound worker. When its inbox is full, paho's
        # thread waits (and the broker holds further QoS 1 messages): backpressure, never a
        # dropped message.
        self.stats.received += 1
        self._inboxes[self._worker_of(msg.topic)].put(msg)

    def _worker_of(self, name: str) -> int:
        """The inbound worker of a topic's locker (every message of one locker goes to the
        same worker, so a locker's messages are applied in order); worker 0 for a topic that
        names no locker (it is refused there)."""
        if len(self._inboxes) == 1:
            return 0
        try:
            locker_id = parse_topic(name)[0]
        except ProtocolError:
            return 0
        return zlib.crc32(locker_id.encode()) % len(self._inboxes)

    def _inbound(self, inbox: queue.Queue[mqtt.MQTTMessage]) -> None:
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
        with self._stats_lock:  # several inbound workers count into one set of figures
            for key, value in counts.items():
                setattr(self.stats, key, getattr(self.stats, key) + value)
            for kind, value in kinds.items():
                self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + value
            self.stats.batches += 1
        for msg in batch:
            self.client.ack(msg.mid, msg.qos)
        if moved and self._held_back:
            self._wake.set()  # settled commands opened the in-flight window

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


def no_delay(client: mqtt.Client) -> None:
    """Turn Nagle's algorithm off on the broker connection: a PUBACK or command written right
    after another small packet would otherwise wait for the broker's delayed TCP ACK (~40 ms)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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


def forget_session(settings: Settings, client_id: str) -> None:
    """Drop a stopped bridge's persistent session at the broker (tests, demos, retired ids):
    otherwise the broker keeps queueing every locker message for a client that never returns."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    if settings.mqtt_username:
        password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
        client.username_pw_set(settings.mqtt_username, password)
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.disconnect()


def new_client_id(prefix: str = "tuanbox-bridge") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def default_client_id(*, durable: bool) -> str:
    """The durable bridge's id is stable (the broker keeps its session under it); a shared
    bridge's is unique per process, so two on one host do not take over each other."""
    base = f"tuanbox-bridge-{socket.gethostname()}"
    return base if durable else f"{base}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
