"""The locker's one MQTT connection (paho-mqtt 2): presence, commands in, outbox out.

- Persistent session (stable client id, ``clean_session=False``) so QoS 1 commands sent
  while the locker was away are delivered when it returns.
- Our own network thread reconnects with capped exponential backoff and jitter (a district
  of lockers coming back after a broker restart must not reconnect in lockstep).
- The will sets ``status`` to ``offline`` (retained); every connect publishes ``online``
  with the boot id and the latest ``state`` snapshot, both retained.
- Inbound commands are handed to the agent through its bounded inbox; when it is full the
  newest command is dropped and counted. That is safe: the platform resends until it gets
  an ack, and the command id makes the resend harmless.
- The outbox publisher hands at most ``window`` rows to paho, oldest first, at QoS 1 and
  deletes a row only in ``on_publish`` (PUBACK). paho itself retransmits unacknowledged
  messages after a reconnect, with the same payload and hence the same ``seq``; after a
  process restart the rows still in SQLite are simply published again.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from edge.agent.ports import Clock, Publisher, utc_now
from edge.agent.schema import AGENT_VERSION
from edge.agent.settings import EdgeSettings
from edge.agent.store import Store
from edge.protocol.envelopes import StateSnapshot, Status, encode
from edge.protocol.topics import topic

log = logging.getLogger(__name__)


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails.

    paho drops the socket it was handshaking on when that raises (a wrong CA, a captive
    portal), so each failed reconnect would leak a file descriptor on a locker that retries
    for days.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except OSError:  # ssl.SSLError is an OSError
            self.close()
            raise


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verifying client context: the given CA file, or the system store."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.sslsocket_class = _ClosingSSLSocket
    return context


class MqttLink(Publisher):
    """Owns the paho client and its network thread."""

    def __init__(
        self,
        settings: EdgeSettings,
        store: Store,
        *,
        boot_id: str,
        on_command: Callable[[bytes], bool],
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.store = store
        self.boot_id = boot_id
        self.on_command = on_command
        self.clock = clock
        lid = settings.locker_id
        self.topics = {kind: topic(lid, kind) for kind in ("cmd", "ack", "evt", "state", "status")}
        self.window = settings.mqtt_publish_window
        self.dropped_commands = 0
        self.connects = 0
        self._connected = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox row id
        self._acked: list[int] = []  # PUBACKed rows, deleted by the pump (mqtt thread only)
        self._cursor = 0  # highest outbox row id handed to paho
        self._more = True  # rows may wait in the outbox from before this process started
        self._state_payload: bytes | None = None
        self._client = self._make_client()
        self._thread: threading.Thread | None = None

    # --- Publisher port ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wake(self) -> None:
        self._wake.set()

    def publish_state(self, snapshot: StateSnapshot) -> None:
        with self._lock:
            self._state_payload = encode(snapshot)
        if self.connected:
            self._client.publish(self.topics["state"], self._state_payload, qos=1, retain=True)

    # --- lifecycle ---------------------------------------------------------------------

    def _status(self, state: str) -> bytes:
        return encode(
            Status(state=state, boot_id=self.boot_id, at=self.clock(), agent_version=AGENT_VERSION)
        )

    def _make_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        if s.mqtt_username:
            password = s.mqtt_password.get_secret_value() if s.mqtt_password else None
            client.username_pw_set(s.mqtt_username, password)
        if s.mqtt_tls:
            client.tls_set_context(tls_context(s.mqtt_ca_file))
        client.will_set(self.topics["status"], self._status("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return client

    def start(self) -> MqttLink:
        self._thread = threading.Thread(target=self._run, name="mqtt", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """A clean stop says ``offline`` itself; only a crash leaves it to the will."""
        if self.connected:
            info = self._client.publish(
                self.topics["status"], self._status("offline"), qos=1, retain=True
            )
            self._wake.set()
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                log.debug("offline status not confirmed before stop")
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._client.disconnect()
        if self._acked:
            self.store.outbox_delete_many(self._acked)
            self._acked = []

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        ceiling = min(s.mqtt_backoff_max_s, s.mqtt_backoff_min_s * 2 ** min(attempt, 16))
        return random.uniform(ceiling / 2, ceiling)

    def _run(self) -> None:
        attempt = 0
        first = True
        s = self.settings
        while not self._stop.is_set():
            try:
                if first:
                    self._client.connect(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive_s)
                    first = False
                else:
                    self._client.reconnect()
            except (OSError, ssl.SSLError) as exc:
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("MQTT connect to %s:%s failed (%s); retry in %.1fs",
                            s.mqtt_host, s.mqtt_port, exc, delay)  # fmt: skip
                self._stop.wait(delay)
                continue
            while not self._stop.is_set():
                rc = self._client.loop(timeout=0.05)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                if self.connected:
                    attempt = 0
                    self._pump()
            if self._acked:
                acked, self._acked = self._acked, []
                self.store.outbox_delete_many(acked)
            self._connected.clear()
            if not self._stop.is_set():
                delay = self._backoff(attempt)
                attempt += 1
                log.warning("MQTT connection lost; reconnect in %.1fs", delay)
                self._stop.wait(delay)

    # --- paho callbacks (run on the mqtt thread) -------------------------------------

    def _on_connect(
        self, client: paho.Client, _u: Any, flags: Any, reason: Any, _p: Any = None
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        self.connects += 1
        client.subscribe(self.topics["cmd"], qos=1)
        client.publish(self.topics["status"], self._status("online"), qos=1, retain=True)
        with self._lock:
            state = self._state_payload
        if state is not None:
            client.publish(self.topics["state"], state, qos=1, retain=True)
        self._connected.set()
        log.info("MQTT connected (session present: %s)", flags.session_present)

    def _on_disconnect(
        self, _c: paho.Client, _u: Any, _flags: Any, reason: Any, _p: Any = None
    ) -> None:
        self._connected.clear()
        log.info("MQTT disconnected: %s", reason)

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        if message.topic != self.topics["cmd"]:
            return
        if not self.on_command(bytes(message.payload)):
            self.dropped_commands += 1
            log.warning("command dropped (agent busy); the platform will resend it")

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, _reason: Any, _p: Any = None) -> None:
        # paho calls this holding its own message lock; touching SQLite here could deadlock
        # against a thread that holds the store and publishes. The pump deletes it instead.
        row_id = self._inflight.pop(mid, None)
        if row_id is not None:
            self._acked.append(row_id)

    # --- outbox ------------------------------------------------------------------------

    def _pump(self) -> None:
        if self._acked:
            acked, self._acked = self._acked, []
            self.store.outbox_delete_many(acked)
        if not (self._wake.is_set() or self._more):
            return
        free = self.window - len(self._inflight)
        if free <= 0:
            return
        self._wake.clear()
        rows = self.store.outbox_after(self._cursor, free)
        # A full window may have left rows behind (a backlog after a restart or an outage).
        self._more = len(rows) == free
        for row in rows:
            target = self.topics["evt"] if row.kind == "evt" else self.topics["ack"]
            info = self._client.publish(target, row.payload, qos=1)
            if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                log.warning("paho refused outbox row %d: %s", row.id, info.rc)
                self._wake.set()
                return
            self._inflight[info.mid] = row.id
            self._cursor = row.id
