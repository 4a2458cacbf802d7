"""The replica's lag on /ops, measured on the real streaming replica: caught up, lagging
(replay paused on a replica of the test's own), unreachable, and not configured."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import make_settings, replica_url_of, wait_replicated
from tests.platform.factories import auth_header, make_user
from tests.platform.replicas import free_port, own_replica, replay_paused
from tuanbox.api.app import create_app
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.devservices.pgreplica import Replica
from tuanbox.settings import Settings


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
    # Other suites load the shared server: this test is about the tile, not their lag.
    settings = make_settings(
        database_url=database,
        database_replica_url=wait_replicated(database),
        replica_lag_warn_s=3600,
    )
    html = _ops_page(settings)
    assert 'data-replica="ok"' in html and "Read replica lag" in html


def test_no_replica_configured_says_so(database: str) -> None:
    html = _ops_page(make_settings(database_url=database))
    assert 'data-replica="off"' in html and "No read replica configured" in html


def test_an_unreachable_replica_is_shown_not_a_500(database: str) -> None:
    unused = replica_url_of(database, free_port())
    html = _ops_page(make_settings(database_url=database, database_replica_url=unused))
    assert 'data-replica="bad"' in html and "Read replica unreachable" in html


@pytest.fixture
def lagging(pg_replica: int) -> Iterator[Replica]:
    with own_replica() as replica:
        yield replica


def test_a_lagging_replica_warns(database: str, lagging: Replica) -> None:
    replica_url = replica_url_of(database, lagging.port)
    settings = make_settings(
        database_url=database, database_replica_url=replica_url, replica_lag_warn_s=0.2
    )
    primary = make_engine(database)
    try:
        # A commit the replica has replayed (so its lag has a timestamp), then replay paused.
        with primary.begin() as conn:
            conn.execute(sa.text("CREATE TABLE lag_probe (n int)"))
        wait_replicated(database, port=lagging.port)
        with replay_paused(lagging):
            with primary.begin() as conn:
                conn.execute(sa.text("INSERT INTO lag_probe VALUES (1)"))
            # The lag grows from here while that commit waits; poll until past 0.2 s.
            deadline = time.monotonic() + 30
            html = ""
            while time.monotonic() < deadline:
                html = _ops_page(settings)
                if 'data-replica="warn"' in html:
                    break
            assert 'data-replica="warn"' in html and "bytes of WAL behind" in html
            assert "catalog pages and reports show data" in html
    finally:
        primary.dispose()
