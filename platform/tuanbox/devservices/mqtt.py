"""Clear retained messages under a topic filter on a development broker.

Lockers publish `status` and `state` retained. On a long-lived development broker every demo
run and test leaves its lockers' retained messages behind, and a bridge subscribing later is
sent all of them at once; past Mosquitto's per-client queue (1,000 by default) it drops
messages. Tests therefore start from a clean `tuanbox/v1/lockers/#`.
"""

from __future__ import annotations

import threading
import time
import uuid

import paho.mqtt.client as mqtt

LOCKER_TOPICS = "tuanbox/v1/lockers/#"


def clear_retained(
    host: str, port: int, topic_filter: str = LOCKER_TOPICS, *, max_passes: int = 20
) -> int:
    """Publish an empty retained message on every retained topic under the filter; return
    how many were cleared. Raises OSError when the broker cannot be reached.

    One subscription is sent at most the broker's queue limit of retained messages, so
    passes repeat until one finds nothing left."""
    total = 0
    for _ in range(max_passes):
        cleared = _clear_pass(host, port, topic_filter)
        if cleared == 0:
            break
        total += cleared
    return total


def _clear_pass(
    host: str, port: int, topic_filter: str, quiet_s: float = 0.5, timeout_s: float = 20.0
) -> int:
    seen: set[str] = set()
    last = [time.monotonic()]
    lock = threading.Lock()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.retain and msg.payload:
            with lock:
                seen.add(msg.topic)
                last[0] = time.monotonic()

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"tuanbox-clean-{uuid.uuid4().hex[:8]}"
    )
    client.on_message = on_message
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        client.subscribe(topic_filter, qos=1)
        deadline = time.monotonic() + timeout_s
        last[0] = time.monotonic()
        # Retained messages arrive right after the subscription; stop once they pause.
        while time.monotonic() - last[0] < quiet_s and time.monotonic() < deadline:
            time.sleep(0.05)
        client.unsubscribe(topic_filter)
        with lock:
            topics = sorted(seen)
        for topic in topics:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout=5)
    finally:
        client.loop_stop()
        client.disconnect()
    return len(topics)
