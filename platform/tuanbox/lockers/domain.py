"""Pure rules of compartments: sizes, zones, capacity in size units and the choice of one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, get_args

SizeClass = Literal["S", "M", "L"]
Zone = Literal["ambient", "chilled", "frozen"]
CompartmentState = Literal["free", "reserved", "occupied", "out_of_service"]
SIZES: tuple[SizeClass, ...] = get_args(SizeClass)
ZONES: tuple[Zone, ...] = get_args(Zone)
COMPARTMENT_STATES: tuple[CompartmentState, ...] = get_args(CompartmentState)

# A size unit is what one S item takes; an M compartment holds two S items or one M, an L
# holds four S, two M or one L. Deliberately coarse: we know a product's class, not its box.
UNITS: dict[str, int] = {"S": 1, "M": 2, "L": 4}
MAX_UNITS = max(UNITS.values())


def units_for(size_class: str, qty: int = 1) -> int:
    """Size units an order line needs: the class's units times the quantity."""
    if size_class not in UNITS:
        raise ValueError(f"unknown size class {size_class!r}; expected one of {SIZES}")
    if qty < 1:
        raise ValueError("quantity must be at least 1")
    return UNITS[size_class] * qty


def capacity(size: str) -> int:
    """Size units a compartment of this size holds."""
    return UNITS[size]


def fits(used_units: int, extra_units: int, size: str) -> bool:
    """Whether ``extra_units`` more fit in a compartment already holding ``used_units``."""
    return used_units + extra_units <= capacity(size)


@dataclass(frozen=True)
class Candidate:
    """A free compartment as the allocator sees it."""

    id: int
    zone: str
    size: str
    wear_count: int


def choose(candidates: Iterable[Candidate], *, zone: str, units: int) -> Candidate | None:
    """Right zone, smallest size that fits, least worn first (ties broken by id).

    The database query in `tuanbox.fulfilment.allocation` orders rows the same way; this
    function is the reference the query is tested against and what SQLite-free code uses.
    """
    fitting = [c for c in candidates if c.zone == zone and capacity(c.size) >= units]
    if not fitting:
        return None
    return min(fitting, key=lambda c: (capacity(c.size), c.wear_count, c.id))


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes even for timezone-aware columns; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
