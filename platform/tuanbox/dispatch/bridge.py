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

Modules: `clients` (client ids, sessions, socket options), `workers` (the inbound workers'
loop, retries and dead letters), `applying` (a batch of messages in the database), `acks`
(a batch of acks in one statement), `outbound` (claiming, publishing, housekeeping), `stats`
(the bridge's counters).
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from edge.protocol.errors import ProtocolError
from edge.protocol.topics import Kind, parse_topic, shared_subscription, subscription
from tuanbox.db.base import utcnow
from tuanbox.dispatch import mqtt5
from tuanbox.dispatch.applying import BatchApplier, last_seen_grain_s
from tuanbox.dispatch.clients import (
    SESSION_NEVER_EXPIRES,
    default_client_id,
    forget_session,
    new_client_id,
    no_delay,
)
from tuanbox.dispatch.listen import OutboxListener
from tuanbox.dispatch.outbound import Outbound
from tuanbox.dispatch.stats import BridgeStats
from tuanbox.dispatch.workers import InboundWorkers, is_transient, message_identity
from tuanbox.fulfilment import lifecycle
from tuanbox.settings import Settings

# Importable from here as before the bridge was split in modules.
__all__ = [
    "Bridge",
    "BridgeStats",
    "default_client_id",
    "forget_session",
    "is_transient",
    "last_seen_grain_s",
    "message_identity",
    "new_client_id",
    "no_delay",
]

log = logging.getLogger("tuanbox.bridge")
INBOUND_KINDS: tuple[Kind, ...] = ("ack", "evt", "state", "status")
# The outbox poll while no NOTIFY can wake the bridge, and the shortest sleep between passes.
FAST_POLL_S = 0.05
# While passes follow each other (a burst, or commits one after another), expiry and the
# accepted timeout are checked at most this often: they cost a pass three round trips, and half
# a second of lateness means nothing against a TTL of hours and an accepted timeout of minutes.
HOUSEKEEPING_S = 0.5


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
        self._threads: list[threading.Thread] = []
        self.client_id = client_id or default_client_id(durable=self.durable)
        self.stats = BridgeStats()
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
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
        self._outbound = Outbound(
            settings,
            session_factory,
            self.client,
            self.stats,
            clock=clock,
            connected=self.connected,
            autocommit=self._autocommit,
        )
        applier = BatchApplier(settings, session_factory, ctx, clock, self._autocommit)
        self._workers = InboundWorkers(
            settings,
            session_factory,
            applier,
            self.client,
            self.stats,
            clock=clock,
            stop=self._stop,
            settled=self._settled,
            batch_size=inbound_batch,
        )

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
            targets.append((functools.partial(self._workers.run, inbox), f"inbound{k}"))
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
                published = self._outbound.publish_due(now) if self.connected.is_set() else 0
                claimed_at = time.perf_counter()
                self.stats.claim_s += claimed_at - began
                if time.monotonic() >= housekeeping_at:
                    self._outbound.housekeeping(now)
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
        due = self._outbound.due_at
        if due is None:
            return self.poll_s
        until_due = (due - self.clock()) / timedelta(seconds=1)
        return min(self.poll_s, max(until_due, FAST_POLL_S))

    # --- outbound -------------------------------------------------------------------------

    def tick(self) -> int:
        """One whole pass over the outbox; returns how many commands were published."""
        return self._outbound.tick()

    def _settled(self) -> None:
        """An inbound batch settled commands: wake the outbox loop if the in-flight window
        held due commands back."""
        if self._outbound.held_back:
            self._wake.set()  # settled commands opened the in-flight window

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
