"""Clearing retained messages on the development broker, under a filter only."""

from __future__ import annotations

import time
import uuid

import paho.mqtt.client as mqtt

from tuanbox.devservices.mqtt import clear_retained


def _retained(host: str, port: int, topic_filter: str) -> set[str]:
    found: set[str] = set()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: found.add(msg.topic) if msg.retain else None
    client.connect(host, port)
    client.loop_start()
    client.subscribe(topic_filter, qos=1)
    time.sleep(0.5)  # retained messages arrive right after SUBACK; there is no end marker
    client.loop_stop()
    client.disconnect()
    return found


def test_clears_every_retained_topic_under_the_filter_and_nothing_else(
    mqtt_broker: tuple[str, int],
) -> None:
    host, port = mqtt_broker
    root = f"tbtest-{uuid.uuid4().hex[:8]}"
    inside = [f"{root}/lockers/L{i}/status" for i in range(5)]
    outside = f"{root}-other/keep"
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect(host, port)
    pub.loop_start()
    for topic in [*inside, outside]:
        pub.publish(topic, b"online", qos=1, retain=True).wait_for_publish(5)
    try:
        assert _retained(host, port, f"{root}/#") == set(inside)
        assert clear_retained(host, port, f"{root}/#") == len(inside)
        assert _retained(host, port, f"{root}/#") == set()
        assert _retained(host, port, outside) == {outside}
    finally:
        pub.publish(outside, b"", qos=1, retain=True).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()
