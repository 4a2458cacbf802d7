"""MQTT test tools: a private Mosquitto, a protocol-level locker client, polling with a deadline."""

from __future__ import annotations

import subprocess
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol.envelopes import (
    Ack,
    CompartmentState,
    Event,
    StateSnapshot,
    Status,
    decode_command,
    encode,
)
from edge.protocol.topics import topic
from tests.support import free_port
from tests.support import wait_until as wait_for
from tuanbox.devservices import probes

MOSQUITTO = "/usr/sbin/mosquitto"


class PrivateBroker:
    """A Mosquitto of our own on a free loopback port, with persistence, restartable."""

    def __init__(self, directory: Path, conf_body: str = "allow_anonymous true\n") -> None:
        self.directory = directory
        self.port = free_port()
        self.conf = directory / "mosquitto.conf"
        self.log = directory / "mosquitto.log"
        (directory / "data").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            # Started as root, mosquitto would switch to its own user, who cannot read the
            # test's private temporary directory; as a normal user this line is ignored.
            "user root\n"
            "persistence true\n"
            f"persistence_location {directory / 'data'}/\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\n" + conf_body
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)])

        def up() -> bool:
            try:
                probes.mqtt("127.0.0.1", self.port)
            except OSError:
                assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
                return False
            return True

        wait_for(up, 10, f"mosquitto on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file first
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class ProtocolLocker:
    """Speaks the v1 locker protocol over MQTT without hardware: the failure-case test client.

    Commands are kept by id and a repeated id gets the same ack (as the real agent must);
    ``ack_mode`` is "done", "none" (stay silent), "reject" or "accept" (accepted, then
    nothing: a command stuck half-way); ``modes`` overrides it per command type.
    """

    def __init__(
        self,
        locker_id: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        ack_mode: str = "done",
    ) -> None:
        self.locker_id = locker_id
        self.port = port
        self.ack_mode = ack_mode
        self.modes: dict[str, str] = {}
        self.boot_id = uuid.uuid4().hex
        self.seq = 0
        self.commands: list[Any] = []  # every delivery, duplicates included
        self.acks: dict[str, Ack] = {}
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"locker-{locker_id}-{uuid.uuid4().hex[:6]}",
            clean_session=False,  # like the agent: the broker queues commands while away
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(
            topic(locker_id, "status"), self._status("offline"), qos=1, retain=True
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = self._on_message

    def _status(self, state: str) -> bytes:
        return encode(
            Status(state=state, boot_id=self.boot_id, at=datetime.now(UTC), agent_version="sim-1")
        )

    def connect(self) -> ProtocolLocker:
        self.ready.clear()
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        wait_for(self.ready.is_set, 10, f"locker {self.locker_id} subscribed")
        return self

    def go_offline(self) -> None:
        """A clean goodbye (the will covers the unclean one)."""
        self.client.publish(
            topic(self.locker_id, "status"), self._status("offline"), qos=1, retain=True
        ).wait_for_publish(5)
        self.client.disconnect()
        self.client.loop_stop()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        # Like the agent: on every (re)connect, listen for commands and say we are online.
        client.subscribe(topic(self.locker_id, "cmd"), qos=1)
        client.publish(topic(self.locker_id, "status"), self._status("online"), qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        command = decode_command(bytes(msg.payload))
        with self.lock:
            self.commands.append(command)
            ack = self.acks.get(command.id)
            mode = self.modes.get(command.type, self.ack_mode)
            if ack is None and mode != "none":
                status = {"done": "done", "accept": "accepted"}.get(mode, "rejected")
                ack = Ack(
                    command_id=command.id,
                    status=status,
                    code="NO_SUCH_COMPARTMENT" if status == "rejected" else None,
                    at=datetime.now(UTC),
                )
                self.acks[command.id] = ack
        if ack is not None:
            client.publish(topic(self.locker_id, "ack"), encode(ack), qos=1)

    def distinct_commands(self) -> set[str]:
        with self.lock:
            return {c.id for c in self.commands}

    def of_type(self, type: str) -> list[Any]:
        """Deliveries of one command type, repeats included, in order."""
        with self.lock:
            return [c for c in self.commands if c.type == type]

    def event(self, type: str, **payload: Any) -> Event:
        self.seq += 1
        return Event(
            locker_id=self.locker_id,
            seq=self.seq,
            type=type,
            at=datetime.now(UTC),
            payload=payload,
        )

    def publish(self, kind: str, body: bytes) -> None:
        self.client.publish(topic(self.locker_id, kind), body, qos=1).wait_for_publish(5)  # type: ignore[arg-type]

    def send_event(self, event: Event) -> None:
        self.publish("evt", encode(event))

    def send_state(self, states: list[CompartmentState]) -> None:
        snapshot = StateSnapshot(
            locker_id=self.locker_id,
            boot_id=self.boot_id,
            at=datetime.now(UTC),
            compartments=states,
        )
        self.client.publish(
            topic(self.locker_id, "state"), encode(snapshot), qos=1, retain=True
        ).wait_for_publish(5)
