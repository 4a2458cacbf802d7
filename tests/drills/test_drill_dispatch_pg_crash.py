"""Drill: PostgreSQL crashes (``pg_ctl stop -m immediate``) under a `tuanbox bridge` that
commits its claims and pure-ack batches with ``synchronous_commit = off``.

Those commits are gone after the crash (the walwriter is stopped beforehand, so none of
them reached the WAL file: the worst case, every async commit since the last synchronous
one lost). The contract must absorb it: the commands come due again, are re-sent with the
same ids, the locker answers from its ledger without running anything twice, and every
command ends done."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from edge.protocol.envelopes import Ack, decode_command, encode
from edge.protocol.token import generate_keypair, private_key_to_b64
from edge.protocol.topics import topic
from tests.conftest import make_settings
from tests.drills.support import Drill, OwnPostgres
from tests.drills.test_drill_dispatch import BridgeProcess, _lockers
from tests.platform.dispatch.mqttfx import PrivateBroker, ProtocolLocker, wait_for
from tests.platform.dispatch.platformfx import Platform
from tests.platform.dispatch.test_broker_restart import _done, _enqueue
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.db.migrate import upgrade
from tuanbox.dispatch.models import OutboxCommand
from tuanbox.fulfilment.lifecycle import Context
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.fulfilment.pickup import load_signing_key

COMMANDS = 30  # per locker, all queued in one transaction


class LedgerLocker(ProtocolLocker):
    """Acks like the agent: "accepted" then "done" the first time it sees an id (and counts
    that execution); a repeated id gets the recorded final ack again, nothing is run."""

    def __init__(self, locker_id: str, port: int) -> None:
        super().__init__(locker_id, port)
        self.executed: Counter[str] = Counter()

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        command = decode_command(bytes(msg.payload))
        with self.lock:
            self.commands.append(command)
            final = self.acks.get(command.id)
            if final is None:
                self.executed[command.id] += 1
                accepted = Ack(command_id=command.id, status="accepted", at=datetime.now(UTC))
                final = Ack(command_id=command.id, status="done", at=datetime.now(UTC))
                self.acks[command.id] = final
                client.publish(topic(self.locker_id, "ack"), encode(accepted), qos=1)
        client.publish(topic(self.locker_id, "ack"), encode(final), qos=1)


@pytest.fixture
def postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


def _platform(postgres: OwnPostgres, port: int, **overrides: Any) -> Platform:
    admin = make_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE tuanbox"))
    admin.dispose()
    url = postgres.url.rsplit("/", 1)[0] + "/tuanbox"
    upgrade(url)
    private, _ = generate_keypair()
    settings = make_settings(
        database_url=url,
        mqtt_port=port,
        pickup_signing_key=private_key_to_b64(private),
        **overrides,
    )
    engine = make_engine(url)
    return Platform(
        engine,
        make_session_factory(engine, settings),
        settings,
        Context(settings, load_signing_key(settings)),
    )


def _statuses(p: Platform, ids: list[str]) -> dict[str, str]:
    with p.session() as session:
        rows = session.execute(
            select(OutboxCommand.id, OutboxCommand.status).where(OutboxCommand.id.in_(ids))
        )
        return {row.id: row.status for row in rows}


def _walwriter(postgres: OwnPostgres) -> int:
    admin = make_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        pid = conn.scalar(
            sa.text("SELECT pid FROM pg_stat_activity WHERE backend_type = 'walwriter'")
        )
    admin.dispose()
    assert pid is not None, "no walwriter process"
    return int(pid)


def _crash(postgres: OwnPostgres, walwriter: int) -> None:
    """``pg_ctl stop -m immediate`` while the walwriter is stopped: its SIGQUIT waits until
    SIGCONT, and its handler exits at once, so it writes nothing of what it held back."""
    stopping = threading.Thread(target=postgres.stop, args=("immediate",))
    stopping.start()
    time.sleep(1.0)
    os.kill(walwriter, signal.SIGCONT)
    stopping.join(60)
    assert not stopping.is_alive(), "pg_ctl stop -m immediate did not finish"


@pytest.mark.slow
def test_postgres_crash_loses_async_commits_of_the_bridge_and_nothing_else(
    postgres: OwnPostgres,
    broker: PrivateBroker,
    drill: Drill,
) -> None:
    drill.title = "PostgreSQL crashed (immediate) under the bridge's async commits"
    p = _platform(
        postgres,
        broker.port,
        command_ack_timeout_s=0.5,
        command_retry_max_s=1.0,
        command_accepted_timeout_s=2.0,
    )
    ids = _lockers(p)
    bridge = BridgeProcess(p)
    bridge.start()
    lockers = [LedgerLocker(i, broker.port) for i in ids]
    for lk in lockers:
        lk.connect()
    try:
        # The lockers' online statuses are applied (synchronously): dispatch can start.
        wait_for(lambda: bridge.alive() and _statuses_online(p, ids), 60, "lockers online")
        walwriter = _walwriter(postgres)
        os.kill(walwriter, signal.SIGSTOP)  # from here on, only synchronous commits write WAL
        sent = [c for i in ids for c in _enqueue(p, i, COMMANDS)]  # a synchronous commit
        total = len(sent)
        wait_for(lambda: _done(p) >= 1, 60, "dispatch under way")
        before = _statuses(p, sent)
        with p.session() as session:
            lsn = session.execute(
                sa.text("SELECT pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()")
            ).one()
        drill.note(f"WAL inserted up to {lsn[0]}, flushed up to {lsn[1]}")
        _crash(postgres, walwriter)
        drill.fault(
            f"PostgreSQL stopped -m immediate (walwriter held) with "
            f"{dict(Counter(before.values()))} of {total} commands as seen just before"
        )
        time.sleep(2)  # the bridge meets a dead database for a while
        # Held while we read what recovery kept, so it re-claims nothing before we look.
        assert bridge.proc is not None and bridge.proc.pid is not None
        os.kill(bridge.proc.pid, signal.SIGSTOP)
        try:
            postgres.start()
            after = _statuses(p, sent)
        finally:
            os.kill(bridge.proc.pid, signal.SIGCONT)
        rank = {"pending": 0, "sent": 1, "accepted": 2, "stalled": 2, "done": 3}
        regressed = Counter(
            f"{before[c]} -> {after[c]}" for c in sent if rank[after[c]] < rank[before[c]]
        )
        lost = sum(regressed.values())
        drill.check("commands all still queued after recovery", total, len(after))
        drill.note(f"after recovery: {dict(Counter(after.values()))}; lost: {dict(regressed)}")
        assert lost > 0, "the crash lost no async commit: this drill proved nothing"
        wait_for(lambda: _done(p) == total, 120, "every command done again")
        drill.check("commands done (DB)", total, _done(p))
        delivered = set().union(*(lk.distinct_commands() for lk in lockers))
        drill.check(
            "of our commands, those that reached a locker", total, len(delivered & set(sent))
        )
        executed: Counter[str] = Counter()
        for lk in lockers:
            executed.update(lk.executed)
        drill.check(
            "commands run by the lockers, each once", [1] * total, [executed[c] for c in sent]
        )
        deliveries = sum(len(lk.commands) for lk in lockers)
        drill.note(f"deliveries incl. re-sends answered from the ledger: {deliveries}")
        with p.session() as session:
            stalled = session.scalar(
                select(func.count()).select_from(OpsAlert).where(OpsAlert.kind == "command_stalled")
            )
        drill.note(f"spurious command_stalled alerts: {stalled}")
        bridge.alive()
    finally:
        bridge.stop()
        for lk in lockers:
            lk.close()
        p.engine.dispose()
    drill.done()


def _statuses_online(p: Platform, ids: list[str]) -> bool:
    from tuanbox.lockers.models import Locker

    with p.session() as session:
        online = session.scalar(
            select(func.count()).select_from(Locker).where(Locker.id.in_(ids), Locker.online)
        )
    return online == len(ids)
