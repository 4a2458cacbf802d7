"""The replica `tuanbox services up` runs: base backup, streaming, status with lag, and stop
(slot dropped, data removed), on a second port so the shared one on 5433 is untouched."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import PG_REPLICA_PORT
from tests.platform.replicas import free_port
from tuanbox.devservices.manager import ServiceManager
from tuanbox.devservices.pgreplica import Replica

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture
def own_replica(pg_replica: int) -> Iterator[Replica]:
    # Not started yet: the tests drive start and stop themselves.
    state = PROJECT / ".services" / f"test-replica-{uuid.uuid4().hex[:8]}"
    replica = Replica(state, port=free_port())
    yield replica
    replica.stop(log=lambda _m: None)
    shutil.rmtree(state, ignore_errors=True)


def _slots() -> dict[str, bool]:
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres") as conn:
        return dict(conn.execute("SELECT slot_name, active FROM pg_replication_slots").fetchall())


def test_start_streams_status_reports_lag_and_stop_cleans_up(own_replica: Replica) -> None:
    own_replica.start(log=lambda _m: None)
    own_replica.start(log=lambda _m: None)  # idempotent: already running
    detail = own_replica.probe()
    assert detail.startswith("standby streaming")
    status = own_replica.status()
    assert status.in_recovery and status.same_system and status.bytes_behind is not None
    assert _slots().get(own_replica.slot) is True

    # A database created on the primary appears on the standby.
    name = f"tuanbox_t_repl_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(
            f"host=127.0.0.1 port={own_replica.port} user=postgres dbname=postgres"
        ) as rep:
            # Polled with a deadline: other suites' writes on this server replay first.
            deadline = time.monotonic() + 120
            while True:
                row = rep.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))
                if row.fetchone() == (1,):
                    break
                assert time.monotonic() < deadline, f"{name} never reached the replica"
                rep.execute("SELECT pg_sleep(0.05)")
    finally:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
        ) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    assert own_replica.stop(log=lambda _m: None)
    assert own_replica.slot not in _slots()
    assert not own_replica.root.exists()
    with pytest.raises(ConnectionError):
        own_replica.probe()


def test_services_status_lists_the_shared_replica_with_its_lag(pg_replica: int) -> None:
    rows = {r.name: r for r in ServiceManager(PROJECT).status()}
    row = rows["pg-replica"]
    assert row.ok and row.url.endswith(f":{PG_REPLICA_PORT}")
    assert "standby streaming" in row.detail and "bytes behind" in row.detail


def test_a_kept_replica_that_cannot_stream_again_is_rebuilt(own_replica: Replica) -> None:
    own_replica.start(log=lambda _m: None)
    marker = own_replica.data_dir / "kept-copy-marker"
    marker.write_text("the copy that cannot resume")
    # Stopped (say the machine rebooted) and its slot dropped meanwhile: it cannot resume.
    own_replica._halt()
    with psycopg.connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True
    ) as admin:
        admin.execute("SELECT pg_drop_replication_slot(%s)", (own_replica.slot,))
    said: list[str] = []
    own_replica.start(log=said.append)
    assert any("new base backup" in line for line in said), said
    assert not marker.exists()  # a new base backup, not the kept copy
    assert own_replica.probe().startswith("standby streaming")
    assert _slots().get(own_replica.slot) is True
