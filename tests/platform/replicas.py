"""A streaming replica of the test's own, for tests that pause or break it (the shared one on
5433 must keep replaying for every other test)."""

from __future__ import annotations

import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tuanbox.devservices.pgreplica import Replica

PROJECT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def own_replica() -> Iterator[Replica]:
    """Base-backed-up and streaming on a free port; stopped, slot dropped, removed after.
    Its directory is inside the project: the postgres account cannot enter pytest's
    root-only temporary directories."""
    state = PROJECT / ".services" / f"test-replica-{uuid.uuid4().hex[:8]}"
    replica = Replica(state, port=free_port())
    try:
        replica.start(log=lambda _m: None)
        yield replica
    finally:
        replica.stop(log=lambda _m: None)
        shutil.rmtree(state, ignore_errors=True)


@contextmanager
def replay_paused(replica: Replica) -> Iterator[None]:
    """Replay paused on ``replica`` (after it has replayed at least one commit, so that its
    lag has a timestamp); resumed after."""
    conninfo = f"host=127.0.0.1 port={replica.port} user=postgres dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as rep:
        rep.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            rep.execute("SELECT pg_wal_replay_resume()")
