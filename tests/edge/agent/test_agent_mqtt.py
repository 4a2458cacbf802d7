"""The MQTT link alone against the real Mosquitto: outbox order, persistent session, drops."""

from __future__ import annotations

import queue
from datetime import UTC, datetime
from pathlib import Path

from edge.agent.mqtt import MqttLink
from edge.agent.store import Store
from edge.protocol.envelopes import decode_command
from tests.edge.agent.support import PlatformClient, agent_settings, assign, wait_until


def test_backlog_is_published_oldest_first_and_deleted_after_puback(
    tmp_path: Path, mqtt_broker: tuple[str, int]
) -> None:
    settings = agent_settings(tmp_path, mqtt_port=mqtt_broker[1], mqtt_publish_window=50)
    store = Store(settings.db_path)
    for n in range(400):  # more than the publish window, stored while "offline"
        store.append_event(settings.locker_id, "tamper", {"n": n}, datetime.now(UTC))
    platform = PlatformClient(*mqtt_broker, settings.locker_id)
    link = MqttLink(settings, store, boot_id="b1", on_command=lambda _p: True).start()
    try:
        wait_until(lambda: store.outbox_depth() == 0, 20, "the outbox to drain")
        wait_until(lambda: len(platform.events) >= 400, 20, "all events at the platform")
    finally:
        link.stop()
        platform.close()
        store.close()
    assert [e.seq for e in platform.events] == list(range(1, 401))
    assert [e.payload["n"] for e in platform.events] == list(range(400))


def test_commands_sent_while_offline_arrive_on_reconnect(
    tmp_path: Path, mqtt_broker: tuple[str, int]
) -> None:
    settings = agent_settings(tmp_path, mqtt_port=mqtt_broker[1])
    store = Store(settings.db_path)
    received: queue.Queue[bytes] = queue.Queue()

    def take(payload: bytes) -> bool:
        received.put(payload)
        return True

    first = MqttLink(settings, store, boot_id="b1", on_command=take).start()
    wait_until(lambda: first.connected, what="first connect")
    first.stop()  # the locker goes away; its session (and subscription) stays at the broker
    platform = PlatformClient(*mqtt_broker, settings.locker_id)
    command = assign(settings.locker_id, "0-1", "o1", "123")
    platform.send(command)
    second = MqttLink(settings, store, boot_id="b2", on_command=take).start()
    try:
        assert decode_command(received.get(timeout=10)).id == command.id
        statuses = wait_until(
            lambda: [s for s in platform.statuses if s.boot_id == "b2"], what="online b2"
        )
        assert statuses[-1].state == "online"
    finally:
        second.stop()
        platform.close()
        store.close()


def test_full_agent_inbox_drops_the_newest_command_and_counts_it(
    tmp_path: Path, mqtt_broker: tuple[str, int]
) -> None:
    settings = agent_settings(tmp_path, mqtt_port=mqtt_broker[1])
    store = Store(settings.db_path)
    inbox: queue.Queue[bytes] = queue.Queue(maxsize=2)

    def post(payload: bytes) -> bool:
        try:
            inbox.put_nowait(payload)
        except queue.Full:
            return False
        return True

    link = MqttLink(settings, store, boot_id="b1", on_command=post).start()
    platform = PlatformClient(*mqtt_broker, settings.locker_id)
    try:
        wait_until(lambda: link.connected, what="connect")
        commands = [assign(settings.locker_id, "0-1", f"o{n}", "1") for n in range(3)]
        for command in commands:
            platform.send(command)
        wait_until(lambda: link.dropped_commands == 1, 10, "one dropped command")
        kept = [decode_command(inbox.get_nowait()).id for _ in range(2)]
        assert kept == [commands[0].id, commands[1].id]
    finally:
        link.stop()
        platform.close()
        store.close()
