"""Which bridge transactions commit with ``synchronous_commit = off``: the claim and batches
of nothing but acks; never one that applies an event, or a failed/rejected ack (those settle
bookings and raise alerts). The PostgreSQL crash drill (tests/drills) shows what the
asynchronous ones cost when they are lost."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from tests.platform.dispatch.mqttfx import PrivateBroker, ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.dispatch.test_broker_restart import _applied, _done, _enqueue
from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.dispatch.bridge import Bridge
from tuanbox.lockers.services import CompartmentSpec

ASYNC = "SET LOCAL synchronous_commit = off"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path)
    b.start()
    yield b
    b.stop()


class Transactions:
    """Every committed transaction on an engine, as the SQL it ran (per connection)."""

    def __init__(self, p: Platform) -> None:
        self.lock = threading.Lock()
        self.open: dict[int, list[str]] = {}
        self.committed: list[list[str]] = []
        event.listen(p.engine, "before_cursor_execute", self._statement)
        event.listen(p.engine, "commit", self._commit)
        event.listen(p.engine, "rollback", self._rollback)

    def _statement(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        with self.lock:
            self.open.setdefault(id(conn), []).append(statement)

    def _commit(self, conn: Any) -> None:
        with self.lock:
            self.committed.append(self.open.pop(id(conn), []))

    def _rollback(self, conn: Any) -> None:
        with self.lock:
            self.open.pop(id(conn), None)

    def having(self, *fragments: str) -> list[list[str]]:
        with self.lock:
            return [
                tx
                for tx in self.committed
                if all(any(f in statement for statement in tx) for f in fragments)
            ]


def test_only_claims_and_pure_ack_batches_skip_the_wal_flush(
    platform_for: Callable[..., Platform],
    bridges: Callable[..., Bridge],
    broker: PrivateBroker,
) -> None:
    p = platform_for(broker.port)
    with p.session() as session:
        row, _ = make_locker(session, make_station(session).id, [CompartmentSpec(0, 1, "S")])
        locker_id = row.id
        session.commit()
    txs = Transactions(p)
    bridge = bridges(p, durable=True)
    wait_for(bridge.connected.is_set, what="bridge connected")
    locker = ProtocolLocker(locker_id, broker.port).connect()
    try:
        commands = _enqueue(p, locker_id, 10)
        wait_for(lambda: _done(p) == len(commands), what="commands done")
        for _ in range(5):
            locker.send_event(locker.event("door_opened", compartment="0-1"))
        wait_for(lambda: _applied(p) == 5, what="events applied")
        locker.ack_mode = "reject"
        rejected = _enqueue(p, locker_id, 3)
        wait_for(lambda: bridge.stats.acks >= len(commands) + len(rejected), what="rejections")
    finally:
        locker.close()
    acks = [
        tx
        for tx in txs.having("UPDATE outbox_commands SET")
        if any(s.startswith("UPDATE outbox_commands SET") and "acked_at" in s for s in tx)
    ]
    claims = [
        tx
        for tx in txs.having("UPDATE outbox_commands")
        if any(
            "UPDATE outbox_commands" in s and "last_sent_at" in s and "RETURNING" in s for s in tx
        )
    ]
    assert claims, "no claiming transaction seen"
    assert all(any(ASYNC in s for s in tx) for tx in claims)
    pure = [tx for tx in acks if not any("ops_alerts" in s for s in tx)]
    assert pure, "no batch of pure acks seen"
    assert all(any(ASYNC in s for s in tx) for tx in pure)
    settled = [tx for tx in acks if any("ops_alerts" in s for s in tx)]
    assert settled, "the rejected acks raised no alert"
    assert not any(any(ASYNC in s for s in tx) for tx in settled)
    events = txs.having("applied_events")
    assert events, "no event transaction seen"
    assert not any(any(ASYNC in s for s in tx) for tx in events)
