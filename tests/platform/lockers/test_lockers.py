"""Stations, lockers and compartments: layouts, validation, credentials, the broker files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from tests.platform.fulfilment.fx import make_locker, make_station
from tuanbox.lockers.credentials import render_acl_file, render_password_file, verify_password
from tuanbox.lockers.errors import BadLayoutError, LockerExistsError, StationNotFoundError
from tuanbox.lockers.services import (
    CompartmentSpec,
    broker_accounts,
    compartment_by_label,
    create_locker,
    is_stale,
    rotate_credentials,
    standard_layout,
)
from tuanbox.models import load_all_models


def test_standard_layout_is_a_full_board_of_mixed_sizes_and_zones() -> None:
    layout = standard_layout(2)
    assert len(layout) == 32 and {s.lock for s in layout} == set(range(1, 17))
    assert {s.size for s in layout} == {"S", "M", "L"}
    assert {s.zone for s in layout} == {"ambient", "chilled", "frozen"}


def test_create_locker_validates_and_hashes_its_password(db_session: Session) -> None:
    station = make_station(db_session)
    locker, password = make_locker(db_session, station.id, standard_layout())
    assert locker.broker_username == locker.id and locker.broker_password_hash
    assert password not in locker.broker_password_hash
    assert verify_password(password, locker.broker_password_hash)
    comp = compartment_by_label(db_session, locker.id, "0-16")
    assert comp is not None and (comp.size, comp.zone, comp.state) == ("L", "frozen", "free")
    assert compartment_by_label(db_session, locker.id, "3-1") is None

    with pytest.raises(LockerExistsError):
        make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")], locker.id)
    with pytest.raises(BadLayoutError):
        make_locker(db_session, station.id, [CompartmentSpec(0, 17, "S")])
    with pytest.raises(BadLayoutError):
        make_locker(
            db_session, station.id, [CompartmentSpec(0, 1, "S"), CompartmentSpec(0, 1, "M")]
        )
    with pytest.raises(BadLayoutError):
        make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")], "no/slashes")
    with pytest.raises(StationNotFoundError):
        make_locker(db_session, "nowhere", [CompartmentSpec(0, 1, "S")])
    with pytest.raises(LockerExistsError):
        create_locker(
            db_session,
            id="tuanbox-bridge",
            station_id=station.id,
            layout=[CompartmentSpec(0, 1, "S")],
            reserved_usernames=("tuanbox-bridge",),
        )


def test_rotation_and_broker_files(db_session: Session) -> None:
    station = make_station(db_session)
    locker, first = make_locker(db_session, station.id, [CompartmentSpec(0, 1, "S")])
    second = rotate_credentials(db_session, locker.id)
    assert second != first and locker.broker_password_hash
    assert verify_password(second, locker.broker_password_hash)
    assert not verify_password(first, locker.broker_password_hash)
    passwd = render_password_file(broker_accounts(db_session))
    assert f"{locker.id}:$7$101$" in passwd
    acl = render_acl_file(["tuanbox-bridge"])
    assert "user tuanbox-bridge\ntopic read tuanbox/v1/lockers/+/ack" in acl
    assert "pattern read tuanbox/v1/lockers/%u/cmd" in acl
    assert "pattern write tuanbox/v1/lockers/%u/cmd" not in acl


def test_stale_lockers(db_session: Session) -> None:
    locker, _ = make_locker(db_session, make_station(db_session).id, [CompartmentSpec(0, 1, "S")])
    now = datetime.now(UTC)
    assert is_stale(locker, now, timedelta(minutes=3))  # never heard from
    locker.last_seen_at = now - timedelta(minutes=2)
    assert not is_stale(locker, now, timedelta(minutes=3))
    assert is_stale(locker, now + timedelta(minutes=2), timedelta(minutes=3))


def test_migration_matches_the_models(engine: object) -> None:
    """The hand-checked 0003 revision creates exactly the tables and columns the models use."""
    metadata = load_all_models()
    inspector = inspect(engine)
    for table in (
        "stations", "lockers", "compartments", "compartment_bookings", "fulfilment_orders",
        "outbox_commands", "applied_events", "ops_alerts",
    ):  # fmt: skip
        in_db = {c["name"] for c in inspector.get_columns(table)}
        assert in_db == set(metadata.tables[table].columns.keys()), table
    pk = inspector.get_pk_constraint("applied_events")
    assert pk["constrained_columns"] == ["locker_id", "seq"]
