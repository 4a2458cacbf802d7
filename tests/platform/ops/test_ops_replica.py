"""The replica's lag on /ops, measured on the real streaming replica: caught up, lagging
(replay paused on a replica of the test's own), unreachable, and not configured."""

from __future__ import annotations

import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import make_settings, replica_url_of, wait_replicated
from tests.platform.factories import auth_header, make_user
from tuanbox.api.app import create_app
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.devservices.pgreplica import Replica
from tuanbox.settings import Settings

PROJECT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ops_page(settings: Settings) -> str:
    engine = make_engine(settings.database_url)
    with make_session_factory(engine, settings)() as db:
        headers = auth_header(settings, make_user(db, "ops"))
        db.commit()
    engine.dispose()
    with TestClient(create_app(settings)) as client:
        page = client.get("/ops", headers=headers, follow_redirects=False)
    assert page.status_code == 200, page.text
    return page.text


@pytest.fixture
def database(pg_replica: int, fresh_database: Callable[[], str]) -> str:
    return fresh_database()


def test_lag_tile_on_the_shared_replica(database: str) -> None:
    settings = make_settings(database_url=database, database_replica_url=wait_replicated(database))
    html = _ops_page(settings)
    assert 'data-replica="ok"' in html and "Read replica lag" in html


def test_no_replica_configured_says_so(database: str) -> None:
    html = _ops_page(make_settings(database_url=database))
    assert 'data-replica="off"' in html and "No read replica configured" in html


def test_an_unreachable_replica_is_shown_not_a_500(database: str) -> None:
    unused = replica_url_of(database).replace(":5433/", f":{_free_port()}/")
    html = _ops_page(make_settings(database_url=database, database_replica_url=unused))
    assert 'data-replica="bad"' in html and "Read replica unreachable" in html


@pytest.fixture
def paused_replica(pg_replica: int) -> Iterator[Replica]:
    """A replica of the test's own (the shared one must keep replaying for everyone)."""
    state = PROJECT / ".services" / f"test-replica-{uuid.uuid4().hex[:8]}"
    replica = Replica(state, port=_free_port())
    replica.start(log=lambda _m: None)
    yield replica
    replica.stop(log=lambda _m: None)
    shutil.rmtree(state, ignore_errors=True)


def test_a_lagging_replica_warns(database: str, paused_replica: Replica) -> None:
    port = paused_replica.port
    replica_url = replica_url_of(database).replace(":5433/", f":{port}/")
    settings = make_settings(
        database_url=database, database_replica_url=replica_url, replica_lag_warn_s=0.2
    )
    # A commit the replica has replayed (a replay timestamp), then replay paused.
    primary = make_engine(database)
    with primary.begin() as conn:
        conn.execute(sa.text("CREATE TABLE lag_probe (n int)"))
    deadline = time.monotonic() + 30
    with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres") as rep:
        while rep.execute("SELECT pg_last_xact_replay_timestamp() IS NULL").fetchone() == (True,):
            assert time.monotonic() < deadline, "the replica never replayed a commit"
            rep.execute("SELECT pg_sleep(0.05)")
        rep.execute("SELECT pg_wal_replay_pause()")
        rep.commit()
        with primary.begin() as conn:
            conn.execute(sa.text("INSERT INTO lag_probe VALUES (1)"))
        primary.dispose()
        # Lag grows from here while the primary's commit waits; poll until past 0.2 s.
        html = ""
        while time.monotonic() < deadline:
            html = _ops_page(settings)
            if 'data-replica="warn"' in html:
                break
        assert 'data-replica="warn"' in html and "bytes of WAL behind" in html
        assert "catalog pages and reports show data" in html
        rep.execute("SELECT pg_wal_replay_resume()")
