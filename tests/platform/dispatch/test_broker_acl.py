"""The generated password and ACL files, loaded by a real Mosquitto: lockers stay in their lane."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session

from edge.protocol.topics import shared_subscription, topic
from tests.platform.dispatch.mqttfx import PrivateBroker, wait_for
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.lockers.credentials import (
    BrokerAccount,
    hash_password,
    render_acl_file,
    render_password_file,
    verify_password,
)
from tuanbox.lockers.services import CompartmentSpec, broker_accounts

BRIDGE_USER, BRIDGE_PASSWORD = "tuanbox-bridge", "bridge-secret"


class Client:
    """A paho client that records what it receives and how its CONNECT went."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.connack: mqtt.ReasonCode | None = None
        self.subacks: list[list[mqtt.ReasonCode]] = []
        self.done = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: self.subacks.append(rcs)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_for(self.done.is_set, 10, "CONNACK")

    def _on_connect(
        self, _c: mqtt.Client, _u: object, _f: object, rc: mqtt.ReasonCode, _p: object
    ) -> None:
        self.connack = rc
        self.done.set()

    def subscribe(self, topic_filter: str) -> None:
        count = len(self.subacks)
        self.client.subscribe(topic_filter, qos=1)
        wait_for(lambda: len(self.subacks) > count, 10, f"SUBACK for {topic_filter}")

    def publish(self, topic_name: str, body: bytes) -> None:
        self.client.publish(topic_name, body, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured(db_session: Session, tmp_path: Path) -> Iterator[tuple[PrivateBroker, dict[str, str]]]:
    station = make_station(db_session)
    passwords = {}
    for name in ("A", "B"):
        locker, password = make_locker(
            db_session,
            station.id,
            [CompartmentSpec(0, 1, "S")],
            f"acl-{name}-{uuid.uuid4().hex[:6]}",
        )
        passwords[name] = locker.id
        passwords[f"{name}.password"] = password
    accounts = [
        BrokerAccount(BRIDGE_USER, hash_password(BRIDGE_PASSWORD)),
        *broker_accounts(db_session),
    ]
    (tmp_path / "passwd").write_text(render_password_file(accounts))
    (tmp_path / "acl").write_text(render_acl_file([BRIDGE_USER]))
    broker = PrivateBroker(
        tmp_path,
        "allow_anonymous false\n"
        f"password_file {tmp_path / 'passwd'}\n"
        f"acl_file {tmp_path / 'acl'}\n",
    )
    broker.start()
    yield broker, passwords
    broker.stop()


def test_hash_format_matches_mosquitto_passwd() -> None:
    encoded = hash_password("s3cret", salt=bytes(range(12)))
    assert encoded.startswith("$7$101$AAECAwQFBgcICQoL$")
    assert verify_password("s3cret", encoded) and not verify_password("other", encoded)


def test_anonymous_and_wrong_passwords_are_refused(
    secured: tuple[PrivateBroker, dict[str, str]],
) -> None:
    broker, lockers = secured
    for username, password in ((None, None), (lockers["A"], "wrong"), ("nobody", "x")):
        client = Client(broker.port, username, password)
        assert client.connack is not None and client.connack.is_failure, username
        client.close()
    ok = Client(broker.port, lockers["A"], lockers["A.password"])
    assert ok.connack is not None and not ok.connack.is_failure
    ok.close()


def test_locker_reads_only_its_own_commands_and_publishes_only_its_own_events(
    secured: tuple[PrivateBroker, dict[str, str]],
) -> None:
    broker, lockers = secured
    a_id, b_id = lockers["A"], lockers["B"]
    bridge = Client(broker.port, BRIDGE_USER, BRIDGE_PASSWORD)
    a = Client(broker.port, a_id, lockers["A.password"])
    b = Client(broker.port, b_id, lockers["B.password"])
    try:
        bridge.subscribe(shared_subscription("evt", "bridge"))
        a.subscribe(topic(b_id, "cmd"))  # B's commands, by name
        a.subscribe("tuanbox/v1/lockers/+/cmd")  # everyone's, by wildcard
        b.subscribe(topic(b_id, "cmd"))

        bridge.publish(topic(b_id, "cmd"), b"for-B")
        bridge.publish(topic(a_id, "cmd"), b"for-A")
        wait_for(lambda: b.received, what="B gets its command")
        wait_for(lambda: a.received, what="A gets its own command")
        assert b.received == [(topic(b_id, "cmd"), b"for-B")]
        assert a.received == [(topic(a_id, "cmd"), b"for-A")]

        # A forges an event as B, then sends one of its own. The broker drops the forgery
        # silently; the bridge sees A's own event (same client, in order) and nothing else.
        a.publish(topic(b_id, "evt"), b"forged")
        a.publish(topic(a_id, "cmd"), b"A may not command itself")
        a.publish(topic(a_id, "evt"), b"genuine")
        wait_for(lambda: bridge.received, what="the bridge gets A's event")
        assert bridge.received == [(topic(a_id, "evt"), b"genuine")]
        assert [m for m in a.received if m[1] == b"A may not command itself"] == []
    finally:
        for client in (bridge, a, b):
            client.close()
