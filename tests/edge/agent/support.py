"""Helpers for the agent tests: the platform side on MQTT, our own broker/InfluxDB, polling."""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent.settings import EdgeSettings, load_settings
from edge.protocol.envelopes import (
    Ack,
    ArmPickupPayload,
    AssignPayload,
    Command,
    Event,
    StateSnapshot,
    Status,
    decode_ack,
    decode_event,
    decode_state,
    decode_status,
    encode,
    hash_code,
)
from edge.protocol.token import PickupToken, sign_token
from edge.protocol.topics import subscription, topic
from tests.support import free_port, wait_until
from tuanbox.devservices.manager import INFLUX_CONF  # the same server config as dev


class PlatformClient:
    """The platform's side of one locker: sends commands, records what the locker says."""

    def __init__(
        self,
        host: str,
        port: int,
        locker_id: str,
        *,
        persistent: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.locker_id = locker_id
        self.events: list[Event] = []
        self.acks: list[Ack] = []
        self.states: list[StateSnapshot] = []
        self.statuses: list[Status] = []
        self.retained: list[str] = []
        self._lock = threading.Lock()
        client_id = f"test-platform-{uuid.uuid4().hex[:8]}"
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(host, port)
        self.client.loop_start()
        wait_until(self.connected.is_set, what="test platform client to connect")

    def _on_connect(self, client: paho.Client, *_: Any) -> None:
        for kind in ("ack", "evt", "state", "status"):
            client.subscribe(subscription(kind, self.locker_id), qos=1)
        self.connected.set()

    def _on_message(self, _c: paho.Client, _u: Any, msg: paho.MQTTMessage) -> None:
        kind = msg.topic.rsplit("/", 1)[-1]
        if not msg.payload:
            return  # a retained topic being cleared
        with self._lock:
            if msg.retain:
                self.retained.append(kind)
            if kind == "evt":
                self.events.append(decode_event(bytes(msg.payload)))
            elif kind == "ack":
                self.acks.append(decode_ack(bytes(msg.payload)))
            elif kind == "state":
                self.states.append(decode_state(bytes(msg.payload)))
            elif kind == "status":
                self.statuses.append(decode_status(bytes(msg.payload)))

    def send(self, command: Command | bytes) -> None:
        payload = command if isinstance(command, bytes) else encode(command)
        self.client.publish(topic(self.locker_id, "cmd"), payload, qos=1).wait_for_publish(5)

    def events_of(self, type_: str) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.type == type_]

    def acks_for(self, command_id: str) -> list[Ack]:
        with self._lock:
            return [a for a in self.acks if a.command_id == command_id]

    def wait_event(self, type_: str, timeout: float = 10.0, count: int = 1) -> list[Event]:
        return wait_until(
            lambda: (found := self.events_of(type_)) and len(found) >= count and found,
            timeout,
            f"{count} {type_} event(s)",
        )

    def wait_final_ack(self, command_id: str, timeout: float = 10.0) -> Ack:
        def final() -> Ack | None:
            acks = [a for a in self.acks_for(command_id) if a.status != "accepted"]
            return acks[-1] if acks else None

        return wait_until(final, timeout, f"final ack of {command_id}")

    def close(self, *, clear_retained: bool = True) -> None:
        """Disconnect; by default also wipe this locker's retained state and status, so
        test lockers do not pile up on a shared broker (call after the agent stopped)."""
        if clear_retained:
            for kind in ("state", "status"):
                info = self.client.publish(topic(self.locker_id, kind), b"", qos=1, retain=True)
                info.wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()


def agent_settings(tmp_path: Path, **overrides: Any) -> EdgeSettings:
    values: dict[str, Any] = {
        "locker_id": f"T{uuid.uuid4().hex[:8]}",
        "state_dir": tmp_path / "state",
        "mqtt_host": "127.0.0.1",
        "mqtt_port": 1883,
        "mqtt_backoff_min_s": 0.1,
        "mqtt_backoff_max_s": 1.0,
        "serial_poll_interval_ms": 100,
        "serial_unlock_confirm_s": 1.5,
        "serial_unlock_retries": 1,
        "influx_flush_interval_s": 0.2,
        "log_format": "console",
    }
    values.update(overrides)
    return load_settings(None, **values)


def now() -> datetime:
    return datetime.now(UTC)


def assign(locker_id: str, compartment: str, order: str, code: str, ttl: float = 60) -> Command:
    payload = AssignPayload(
        order_id=order, compartment=compartment, deposit_code_hash=hash_code(code, locker_id)
    )
    return Command.new("assign", payload, issued_at=now(), ttl_seconds=ttl)


def arm(
    locker_id: str, compartment: str, order: str, token_id: str, code: str = "424242"
) -> Command:
    payload = ArmPickupPayload(
        order_id=order,
        compartment=compartment,
        token_id=token_id,
        fallback_code_hash=hash_code(code, locker_id),
        valid_until=now() + timedelta(hours=2),
    )
    return Command.new("arm_pickup", payload, issued_at=now(), ttl_seconds=60)


def qr(private_key: Any, locker_id: str, compartment: str, order: str, token_id: str) -> str:
    issued = int(time.time())
    token = PickupToken(
        tid=token_id, lid=locker_id, cmp=compartment, oid=order, exp=issued + 3600, iat=issued
    )
    return sign_token(private_key, token)


# --- our own services, for outages ----------------------------------------------------

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
# Run as whoever started the test, so the data under tmp_path stays writable.
user {user}
persistence true
persistence_location {root}/
autosave_interval 1
log_dest file {root}/mosquitto.log
"""


class OwnMosquitto:
    """A mosquitto on a free port that a test may stop and start again on the same port."""

    def __init__(self, root: Path, auth: str = "allow_anonymous true\n") -> None:
        """``auth`` is the access part of the config (anonymous by default)."""
        self.root = root
        self.port = free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.conf = root / "mosquitto.conf"
        self.conf.write_text(
            MOSQUITTO_CONF.format(port=self.port, root=root, user=getpass.getuser()) + auth
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)])
        wait_until(self._answers, 10, f"mosquitto on {self.port}")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class OwnInfluxd:
    """An influxd 1.x on free ports with its data under ``root``; can be killed and restarted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port, rpc_port = free_port(), free_port()
        root.mkdir(parents=True, exist_ok=True)
        self.conf = root / "influxdb.conf"
        self.conf.write_text(INFLUX_CONF.format(root=root, port=self.port, rpc_port=rpc_port))
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        with (self.root / "influxd.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [binary, "-config", str(self.conf)], stdout=log, stderr=log
            )
        wait_until(self._answers, 30, f"influxd on {self.port}")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def influx_query(url: str, db: str, q: str) -> list[list[Any]]:
    response = httpx.get(f"{url}/query", params={"db": db, "q": q, "epoch": "ms"}, timeout=10)
    response.raise_for_status()
    series = response.json()["results"][0].get("series", [])
    return series[0]["values"] if series else []


def influx_create_db(url: str, db: str) -> None:
    httpx.post(
        f"{url}/query", params={"q": f'CREATE DATABASE "{db}"'}, timeout=10
    ).raise_for_status()
