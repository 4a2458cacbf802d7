"""What the bridge sends PostgreSQL: a claim and a batch of plain acks are one statement each,
in autocommit (one round trip, no BEGIN and COMMIT around it); a batch holding anything that
settles more than its commands' rows (a rejected ack) stays in a transaction."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, select

from edge.protocol.envelopes import SyncPayload
from tests.platform.dispatch.mqttfx import ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch import outbox
from tuanbox.dispatch.bridge import Bridge
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.lockers.services import CompartmentSpec


def test_claims_and_plain_ack_batches_run_alone_in_autocommit(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    mqtt_broker: tuple[str, int],
) -> None:
    p = platform_for(mqtt_broker[1])
    with p.session() as session:
        station = make_station(session).id
        plain, refusing = (
            make_locker(session, station, [CompartmentSpec(0, 1, "S")])[0].id for _ in range(2)
        )
        session.commit()
    seen: list[tuple[str, str, bool]] = []  # thread, statement, autocommit

    @event.listens_for(p.engine, "before_cursor_execute")
    def record(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        autocommit = bool(conn.connection.dbapi_connection.autocommit)
        seen.append((threading.current_thread().name, " ".join(statement.split()), autocommit))

    bridge = bridges(p)
    wait_for(bridge.connected.is_set, what="bridge up")
    lockers = [
        ProtocolLocker(plain, mqtt_broker[1]).connect(),
        ProtocolLocker(refusing, mqtt_broker[1], ack_mode="reject").connect(),
    ]

    def settled() -> bool:
        with p.session() as session:
            open_ = OutboxCommand.status.in_(("pending", "sent", "accepted"))
            return session.scalar(select(func.count()).where(open_)) == 0

    try:
        wait_for(settled, what="the lockers' coming-online commands acked")
        del seen[:]
        with p.session() as session:
            now = datetime.now(UTC)
            for locker_id in [plain] * 20 + [refusing]:
                outbox.enqueue(session, locker_id, "sync", SyncPayload(), now=now, ttl_s=60)
            session.commit()
        wait_for(settled, what="the commands acked")
        with p.session() as session:
            statuses = session.scalars(select(OutboxCommand.status)).all()
        assert sorted(set(statuses)) == ["done", "rejected"]
    finally:
        for locker in lockers:
            locker.close()
    writes = [s for s in seen if s[1].startswith(("WITH", "UPDATE", "INSERT", "SELECT"))]
    claims = [s for s in writes if s[0].endswith("-outbox") and s[1].startswith('WITH "window" AS')]
    assert claims and all(autocommit for _, _, autocommit in claims)
    # The inbound workers: the done acks in batches of one statement each, in autocommit; the
    # rejected one (its booking is settled and ops alerted with it) inside a transaction.
    inbound = [s for s in writes if "-inbound" in s[0]]
    alone = [s for s in inbound if s[2]]
    assert alone and all(statement.startswith("WITH v AS") for _, statement, _ in alone)
    in_transaction = [statement for _, statement, autocommit in inbound if not autocommit]
    assert any(statement.startswith("WITH v AS") for statement in in_transaction)
    assert any("ops_alerts" in statement for statement in in_transaction)
