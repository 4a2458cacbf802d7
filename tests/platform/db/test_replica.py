"""Read sessions against the real streaming replica (`tuanbox services up`, port 5433):
reads are served by the standby, writes through them never reach any server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from tests.conftest import make_settings, replica_url_of, wait_replicated
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.db.replica import (
    ReadOnlySessionError,
    dispose_read_engines,
    on_replica,
    primary_lsn,
    replica_factory,
    replica_lag,
    wait_replayed,
)
from tuanbox.lockers.models import Station
from tuanbox.settings import Settings


@pytest.fixture
def replicated(pg_replica: int, fresh_database: Callable[[], str]) -> Iterator[Settings]:
    """Settings of a fresh database whose creation the replica has replayed."""
    url = fresh_database()
    settings = make_settings(database_url=url, database_replica_url=wait_replicated(url))
    yield settings
    dispose_read_engines()


@pytest.fixture
def primary(replicated: Settings) -> Iterator[Engine]:
    eng = make_engine(replicated.database_url)
    yield eng
    eng.dispose()


def test_a_read_session_is_served_by_the_replica(replicated: Settings, pg_replica: int) -> None:
    with replica_factory(replicated)() as reader:
        in_recovery, port = reader.execute(
            sa.text("SELECT pg_is_in_recovery(), inet_server_port()")
        ).one()
        assert in_recovery is True and port == pg_replica
        assert on_replica(reader)
        assert replica_url_of(replicated.database_url) == replicated.database_replica_url


def test_a_commit_on_the_primary_reaches_the_read_session_by_replication(
    replicated: Settings, primary: Engine
) -> None:
    with make_session_factory(primary, replicated)() as db:
        db.add(Station(id="st-repl", name="Lobby", address="1 Road", lat=31.2, lon=121.4))
        db.commit()
        lsn = primary_lsn(db)
    assert lsn is not None
    with replica_factory(replicated)() as reader:
        assert wait_replayed(reader, lsn, timeout_s=120)
        station = reader.get(Station, "st-repl")
        assert station is not None and station.name == "Lobby"
        lag = replica_lag(reader)
        assert lag.in_recovery and lag.replay_s is not None and lag.replay_s >= 0


def test_writes_through_the_read_factory_fail_and_reach_no_server(
    replicated: Settings, primary: Engine
) -> None:
    factory = replica_factory(replicated)
    with factory() as reader:
        reader.add(Station(id="st-never", name="x", address="x", lat=0, lon=0))
        with pytest.raises(ReadOnlySessionError):
            reader.commit()
    with factory() as reader, pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
        reader.execute(
            sa.text(
                "INSERT INTO stations (id, name, address, lat, lon, opening_notes, created_at,"
                " updated_at) VALUES ('st-raw', 'n', 'a', 0, 0, '', now(), now())"
            )
        )
    with primary.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM stations WHERE id LIKE 'st-%'")).scalars()
        assert set(ids) == set()


def test_lag_measured_from_both_sides(replicated: Settings, primary: Engine) -> None:
    with replica_factory(replicated)() as reader, make_session_factory(primary)() as db:
        lsn = primary_lsn(db)
        assert lsn is not None and wait_replayed(reader, lsn, timeout_s=120)
        lag = replica_lag(reader, db)
    assert lag.in_recovery and lag.bytes_behind is not None and lag.bytes_behind >= 0
