"""Use cases of stations, lockers and compartments: create, credentials, flags, listings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from edge.protocol.compartments import check_board_lock, parse_compartment
from edge.protocol.errors import ProtocolError
from edge.protocol.topics import validate_locker_id
from tuanbox.lockers import credentials
from tuanbox.lockers.domain import SIZES, ZONES, as_utc
from tuanbox.lockers.errors import (
    BadLayoutError,
    CompartmentNotFoundError,
    LockerExistsError,
    LockerNotFoundError,
    StationNotFoundError,
)
from tuanbox.lockers.models import Compartment, Locker, Station

# Inner dimensions (width, height, depth in mm) of the cabinets we buy; a layout may override.
DEFAULT_DIMENSIONS = {"S": (300, 120, 450), "M": (300, 240, 450), "L": (300, 480, 450)}


@dataclass(frozen=True)
class CompartmentSpec:
    board: int
    lock: int
    size: str
    zone: str = "ambient"
    dimensions_mm: tuple[int, int, int] | None = None


def standard_layout(boards: int = 1) -> list[CompartmentSpec]:
    """A 16-door board: 6 S, 6 M, 4 L; the last four doors of each size class are chilled."""
    plan = ["S"] * 6 + ["M"] * 6 + ["L"] * 4
    zones = ["ambient"] * 4 + ["chilled"] * 2 + ["ambient"] * 4 + ["chilled"] * 2
    zones += ["ambient", "ambient", "chilled", "frozen"]
    return [
        CompartmentSpec(board, lock, plan[lock - 1], zones[lock - 1])
        for board in range(boards)
        for lock in range(1, 17)
    ]


def create_station(
    session: Session,
    *,
    id: str,
    name: str,
    address: str,
    lat: float,
    lon: float,
    opening_notes: str = "",
) -> Station:
    station = Station(
        id=id, name=name, address=address, lat=lat, lon=lon, opening_notes=opening_notes
    )
    session.add(station)
    session.flush()
    return station


def unknown_stations(session: Session, station_ids: Sequence[str]) -> list[str]:
    """Those of `station_ids` with no row in the stations table, sorted."""
    wanted = set(station_ids)
    if not wanted:
        return []
    known = set(session.scalars(select(Station.id).where(Station.id.in_(wanted))))
    return sorted(wanted - known)


def create_locker(
    session: Session,
    *,
    id: str,
    station_id: str,
    layout: Sequence[CompartmentSpec],
    hardware_profile: str = "kerong-cu16",
    reserved_usernames: Sequence[str] = (),
) -> tuple[Locker, str]:
    """Add a locker with its compartments and fresh broker credentials.

    Returns the locker and its broker password, which is not stored anywhere in clear:
    show it once to whoever provisions the device.
    """
    try:
        validate_locker_id(id)
    except ProtocolError as exc:
        raise BadLayoutError(exc.message) from exc
    if id in reserved_usernames:
        raise LockerExistsError(f"{id!r} is a reserved broker account name")
    if session.get(Station, station_id) is None:
        raise StationNotFoundError(f"station {station_id} does not exist")
    if session.get(Locker, id) is not None:
        raise LockerExistsError(f"locker {id} already exists")
    seen: set[tuple[int, int]] = set()
    for spec in layout:
        _check_spec(spec, seen)
    password = credentials.new_password()
    locker = Locker(
        id=id,
        station_id=station_id,
        hardware_profile=hardware_profile,
        board_layout={"boards": sorted({s.board for s in layout})},
        broker_username=id,
        broker_password_hash=credentials.hash_password(password),
        online=False,
        last_event_seq=0,
    )
    session.add(locker)
    for spec in layout:
        width, height, depth = spec.dimensions_mm or DEFAULT_DIMENSIONS[spec.size]
        session.add(
            Compartment(
                locker_id=id,
                board=spec.board,
                lock=spec.lock,
                size=spec.size,
                zone=spec.zone,
                width_mm=width,
                height_mm=height,
                depth_mm=depth,
                state="free",
                wear_count=0,
                flagged_mismatch=False,
            )
        )
    session.flush()
    return locker, password


def _check_spec(spec: CompartmentSpec, seen: set[tuple[int, int]]) -> None:
    try:
        check_board_lock(spec.board, spec.lock)
    except ProtocolError as exc:
        raise BadLayoutError(exc.message) from exc
    if spec.size not in SIZES or spec.zone not in ZONES:
        raise BadLayoutError(f"compartment {spec.board}-{spec.lock}: bad size or zone")
    if (spec.board, spec.lock) in seen:
        raise BadLayoutError(f"compartment {spec.board}-{spec.lock} listed twice")
    seen.add((spec.board, spec.lock))


def rotate_credentials(session: Session, locker_id: str) -> str:
    """New broker password for a locker (the old one stops working at the next file reload)."""
    locker = get_locker(session, locker_id)
    password = credentials.new_password()
    locker.broker_password_hash = credentials.hash_password(password)
    session.flush()
    return password


def broker_accounts(session: Session) -> list[credentials.BrokerAccount]:
    rows = session.scalars(select(Locker).order_by(Locker.id)).all()
    return [
        credentials.BrokerAccount(r.broker_username, r.broker_password_hash)
        for r in rows
        if r.broker_password_hash
    ]


def get_locker(session: Session, locker_id: str) -> Locker:
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise LockerNotFoundError(f"locker {locker_id} does not exist")
    return locker


def get_compartment(session: Session, locker_id: str, compartment_id: int) -> Compartment:
    comp = session.get(Compartment, compartment_id)
    if comp is None or comp.locker_id != locker_id:
        raise CompartmentNotFoundError(f"compartment {compartment_id} not in locker {locker_id}")
    return comp


def compartment_by_label(session: Session, locker_id: str, label: str) -> Compartment | None:
    """The compartment a locker calls ``"<board>-<lock>"``, or None (also for ids out of range,
    which no compartment can have and which would overflow the integer columns)."""
    try:
        board, lock = parse_compartment(label)
    except ProtocolError:
        return None
    return session.scalars(
        select(Compartment).where(
            Compartment.locker_id == locker_id, Compartment.board == board, Compartment.lock == lock
        )
    ).one_or_none()


def is_stale(locker: Locker, now: datetime, offline_after: timedelta) -> bool:
    """A locker that says online but has not been heard from for too long (no heartbeat)."""
    if locker.last_seen_at is None:
        return True
    return now - as_utc(locker.last_seen_at) > offline_after
