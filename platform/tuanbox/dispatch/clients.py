"""The bridge's broker connection: client ids, persistent sessions, the socket's options."""

from __future__ import annotations

import os
import socket
import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tuanbox.settings import Settings

# MQTT 5 session expiry meaning "never": the broker keeps a persistent bridge's session (its
# subscriptions and the QoS 1 messages queued for it) however long the bridge is away.
SESSION_NEVER_EXPIRES = 0xFFFFFFFF


def no_delay(client: mqtt.Client) -> None:
    """Turn Nagle's algorithm off on the broker connection: a PUBACK or command written right
    after another small packet would otherwise wait for the broker's delayed TCP ACK (~40 ms)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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
