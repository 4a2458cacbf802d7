"""The real locker agent answers the platform's sync with a fresh state snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from edge.agent.demo import run_locker
from tests.platform.dispatch.mqttfx import wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.db.base import utcnow
from tuanbox.dispatch import outbox
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.pickup import public_key_b64
from tuanbox.lockers.services import standard_layout


def _status(p: Platform, command_id: str) -> str | None:
    with p.session() as session:
        return session.scalar(select(OutboxCommand.status).where(OutboxCommand.id == command_id))


def test_the_agent_answers_sync_with_its_state(
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
    bridge = bridges(p)
    sim = run_locker(
        locker_id,
        tmp_path / "locker",
        mqtt_port=mqtt_broker[1],
        pickup_public_key=public_key_b64(p.ctx.signing_key),
    )
    try:
        # Coming online brings the platform's first sync, which the agent carries out.
        def reconnect_sync() -> str | None:
            with p.session() as session:
                return session.scalar(
                    select(OutboxCommand.status).where(OutboxCommand.ref == "sync:reconnect")
                )

        wait_for(lambda: reconnect_sync() == "done", 30, "the reconnect sync done")
        wait_for(lambda: bridge.stats.states >= 1, 30, "the state on connect")
        before = bridge.stats.states
        with p.session() as session:
            ask = outbox.request_sync(session, locker_id, now=utcnow(), ttl_s=60, reason="test")
            assert ask is not None
            session.commit()
            ask_id = ask.id
        wait_for(lambda: _status(p, ask_id) == "done", 30, "the sync acked done")
        wait_for(lambda: bridge.stats.states > before, 30, "a fresh snapshot after the sync")
    finally:
        sim.stop()
