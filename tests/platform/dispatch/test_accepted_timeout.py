"""A command the locker accepted and never finished: stalled, the locker synced, ops alerted."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select

from edge.protocol.envelopes import Ack, encode
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.dispatch.test_bridge_flow import command_statuses, seed_order
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.models import OpsAlert


def _stall_syncs(p: Platform) -> list[OutboxCommand]:
    with p.session() as session:
        return list(
            session.scalars(select(OutboxCommand).where(OutboxCommand.ref == "sync:stalled"))
        )


def test_accepted_and_never_done_is_stalled_synced_resent_and_alerted(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1], command_accepted_timeout_s=0.5)
    locker_id, order_id = seed_order(p)
    bridge = bridges(p)
    locker = ProtocolLocker(locker_id, mqtt_broker[1])
    locker.modes["assign"] = "accept"  # accepted, then the door board hangs: never done
    locker.connect()
    try:
        assign = wait_for(lambda: locker.of_type("assign"), what="the assign")[0]
        key = f"assign:{assign.id}"
        wait_for(lambda: command_statuses(p)[key] == "stalled", what="the assign stalled")
        # Re-sent once, so a lost "done" would come back; the locker is asked for its state.
        wait_for(lambda: len(locker.of_type("assign")) >= 2, what="the assign re-sent")
        assert {c.id for c in locker.of_type("assign")} == {assign.id}
        sync = wait_for(lambda: _stall_syncs(p), what="a sync after the stall")[0]
        wait_for(lambda: sync.id in {c.id for c in locker.of_type("sync")}, what="sync sent")
        assert bridge.stats.stalled == 1
        with p.session() as session:
            alert = session.scalars(
                select(OpsAlert).where(OpsAlert.kind == "command_stalled")
            ).one()
            assert alert.severity == "critical" and alert.locker_id == locker_id
            assert alert.order_id == order_id and assign.id in alert.detail

        # A late "done" still settles it, and nothing stalls twice.
        late = Ack(command_id=assign.id, status="done", at=datetime.now(UTC))
        locker.publish("ack", encode(late))
        wait_for(lambda: command_statuses(p)[key] == "done", what="the late done recorded")
        assert bridge.stats.stalled == 1
        with p.session() as session:
            assert session.scalars(select(OpsAlert.kind)).all() == ["command_stalled"]
    finally:
        locker.close()
