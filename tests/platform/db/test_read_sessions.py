"""Read sessions without a replica: on the primary, and still refusing every kind of write."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import make_settings
from tuanbox.api.app import create_app
from tuanbox.db.engine import make_engine, make_session_factory, settings_of
from tuanbox.db.migrate import upgrade
from tuanbox.db.replica import (
    ReadOnlySessionError,
    is_read_only,
    make_read_engine,
    make_read_session_factory,
    on_replica,
    replica_factory,
)
from tuanbox.lockers.models import Station


def _station(sid: str) -> Station:
    return Station(id=sid, name="Lobby", address="1 Road", lat=31.2, lon=121.4)


@pytest.fixture
def primary(fresh_database: Callable[[], str]) -> Iterator[Engine]:
    eng = make_engine(fresh_database())
    yield eng
    eng.dispose()


def test_without_a_replica_reads_use_the_primary_and_carry_the_settings(primary: Engine) -> None:
    settings = make_settings(database_url=str(primary.url))
    assert make_read_engine(settings, primary) is primary
    with make_session_factory(primary, settings)() as db:
        db.add(_station("st-read-1"))
        db.commit()
    with make_read_session_factory(primary, settings)() as reader:
        assert reader.get(Station, "st-read-1") is not None
        assert is_read_only(reader) and not on_replica(reader)
        assert settings_of(reader) is settings


def test_orm_writes_through_a_read_session_raise(primary: Engine) -> None:
    settings = make_settings(database_url=str(primary.url))
    with make_read_session_factory(primary, settings)() as reader:
        reader.add(_station("st-read-2"))
        with pytest.raises(ReadOnlySessionError):
            reader.flush()
        reader.rollback()
        with pytest.raises(ReadOnlySessionError):
            reader.execute(sa.insert(Station).values(id="x", name="n", address="a", lat=0, lon=0))
        with pytest.raises(ReadOnlySessionError):
            reader.execute(sa.update(Station).values(name="renamed"))
        with pytest.raises(ReadOnlySessionError):
            reader.execute(sa.delete(Station))


def test_raw_sql_writes_fail_in_postgresql_and_the_pool_stays_writable(primary: Engine) -> None:
    settings = make_settings(database_url=str(primary.url))
    reader = make_read_session_factory(primary, settings)()
    with reader, pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
        reader.execute(
            sa.text(
                "INSERT INTO stations (id, name, address, lat, lon, opening_notes,"
                " created_at, updated_at) VALUES ('raw', 'n', 'a', 0, 0, '', now(), now())"
            )
        )
    # The same pooled connection, back in a primary session, writes as before.
    with make_session_factory(primary, settings)() as db:
        db.add(_station("st-after-read"))
        db.commit()
        assert db.execute(sa.text("SHOW transaction_read_only")).scalar_one() == "off"


def test_replica_factory_without_a_replica_is_read_only_on_the_primary(primary: Engine) -> None:
    settings = make_settings(database_url=str(primary.url))
    with replica_factory(settings, primary)() as reader:
        assert reader.get_bind() is primary
        assert reader.execute(sa.text("SHOW transaction_read_only")).scalar_one() == "on"
        assert not on_replica(reader)


def test_read_sessions_refuse_orm_writes_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/t.sqlite3"
    upgrade(url)
    eng = make_engine(url)
    settings = make_settings(database_url=url)
    try:
        reader: Session = make_read_session_factory(eng, settings)()
        reader.add(_station("st-sqlite"))
        with pytest.raises(ReadOnlySessionError):
            reader.commit()
        reader.close()
    finally:
        eng.dispose()


def test_the_app_builds_its_read_factory(primary: Engine) -> None:
    settings = make_settings(database_url=str(primary.url))
    app = create_app(settings, engine=primary)
    assert app.state.read_engine is primary
    with app.state.read_session_factory() as reader:
        assert is_read_only(reader)
