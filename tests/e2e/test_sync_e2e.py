"""The real locker agent answers the platform's sync with a fresh state snapshot."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from edge.agent.demo import run_locker
from edge.protocol.envelopes import StateSnapshot, decode_state
from edge.protocol.topics import topic
from tests.platform.dispatch.mqttfx import wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.db.base import utcnow
from tuanbox.dispatch import outbox
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.pickup import public_key_b64
from tuanbox.lockers.domain import as_utc
from tuanbox.lockers.services import standard_layout


def _acked_at(p: Platform, **where: str) -> datetime | None:
    """When the locker said `done` to the sync matching `where` (None: not yet)."""
    with p.session() as session:
        row = session.scalars(select(OutboxCommand).filter_by(type="sync", **where)).first()
        return as_utc(row.acked_at) if row and row.status == "done" and row.acked_at else None


def test_the_agent_answers_sync_with_a_fresh_state(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
    tmp_path: Path,
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        locker, _ = make_locker(session, make_station(session).id, standard_layout())
        session.commit()
        locker_id = locker.id
    # What the locker publishes on its state topic, seen from outside the platform.
    states: list[StateSnapshot] = []
    watcher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}")
    watcher.on_message = lambda _c, _u, m: states.append(decode_state(bytes(m.payload)))
    watcher.connect("127.0.0.1", mqtt_broker[1])
    watcher.subscribe(topic(locker_id, "state"), qos=1)
    watcher.loop_start()
    bridges(p)
    sim = run_locker(
        locker_id,
        tmp_path / "locker",
        mqtt_port=mqtt_broker[1],
        pickup_public_key=public_key_b64(p.ctx.signing_key),
    )
    try:
        # Coming online brings the platform's first sync, which the agent carries out.
        wait_for(lambda: _acked_at(p, ref="sync:reconnect"), 30, "the reconnect sync done")
        with p.session() as session:
            ask = outbox.request_sync(session, locker_id, now=utcnow(), ttl_s=60, reason="test")
            assert ask is not None
            session.commit()
            ask_id = ask.id
        done = wait_for(lambda: _acked_at(p, id=ask_id), 30, "the sync acked done")
        # The agent publishes its snapshot once the sync is done (same clock as its ack).
        fresh = wait_for(lambda: [s for s in states if s.at >= done], 30, "a fresh snapshot")
        assert fresh[-1].locker_id == locker_id and len(fresh[-1].compartments) == 16
    finally:
        sim.stop()
        watcher.disconnect()
        watcher.loop_stop()
