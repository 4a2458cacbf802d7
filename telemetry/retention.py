"""Retention and downsampling: raw points for weeks, 5-minute aggregates for years.

InfluxDB 1.x (tests, the Debian package): two retention policies on the telemetry database,
``raw`` (DEFAULT, so writers need no ``rp`` parameter; 30 d) and ``rollup_5m`` (730 d), and
continuous queries that every 5 minutes aggregate the raw measurements into ``*_5m``
measurements of the long policy (``RESAMPLE FOR 15m`` so points that arrive late, e.g. an edge
backlog after an outage of up to 15 minutes, still land in their bucket; older backlogs are
caught by :func:`backfill_rollups`).

InfluxDB 2.x (production compose): retention policies become buckets and continuous queries
become tasks. Create buckets ``tuanbox/raw`` (30 d) and ``tuanbox/rollup_5m`` (730 d), map
them with ``influx v1 dbrp create --db tuanbox --rp raw --bucket-id … --default`` (and the
same for ``rollup_5m``) so the InfluxQL in this package keeps working, then add one task per
measurement::

    option task = {name: "cold_chain_5m", every: 5m, offset: 1m}
    from(bucket: "tuanbox/raw")
        |> range(start: -15m)
        |> filter(fn: (r) => r._measurement == "cold_chain")
        |> aggregateWindow(every: 5m, fn: mean, createEmpty: false)
        |> set(key: "_measurement", value: "cold_chain_5m")
        |> to(bucket: "tuanbox/rollup_5m")

(min and max as two more ``aggregateWindow`` pipes renaming ``_field`` to ``celsius_min`` /
``celsius_max``). :func:`apply_retention` refuses to run against 2.x, which does not accept
these statements.
"""

# ruff: noqa: S608 - InfluxQL, not SQL: identifiers go through quote_ident, times through int()
from __future__ import annotations

from dataclasses import dataclass

from telemetry import schema as s
from telemetry.errors import TelemetryError
from telemetry.influx import InfluxClient, quote_ident
from telemetry.settings import TelemetrySettings

ROLLUP_SUFFIX = "_5m"
ROLLUP_EVERY = "5m"


@dataclass(frozen=True)
class Rollup:
    """One continuous query: its name, source measurement and aggregate columns."""

    name: str
    source: str
    select: str

    @property
    def target(self) -> str:
        return self.source + ROLLUP_SUFFIX


ROLLUPS: tuple[Rollup, ...] = (
    Rollup(
        "cq_cold_chain_5m",
        s.COLD_CHAIN.name,
        f"mean({s.F_CELSIUS}) AS {s.F_CELSIUS}, min({s.F_CELSIUS}) AS celsius_min, "
        f"max({s.F_CELSIUS}) AS celsius_max, mean({s.F_HUMIDITY}) AS {s.F_HUMIDITY}",
    ),
    Rollup(
        "cq_locker_health_5m",
        s.LOCKER_HEALTH.name,
        f"max({s.F_OUTBOX_DEPTH}) AS {s.F_OUTBOX_DEPTH}, "
        f"max({s.F_DROPPED_POINTS}) AS {s.F_DROPPED_POINTS}, "
        f"max({s.F_UPTIME_S}) AS {s.F_UPTIME_S}",
    ),
    Rollup("cq_door_5m", s.DOOR.name, f"count({s.F_DOOR_STATE}) AS changes"),
)


def _select_into(
    database: str, raw_rp: str, rollup_rp: str, rollup: Rollup, where: str = ""
) -> str:
    # GROUP BY * keeps every tag, so the rollup has the same series keys as the raw data.
    return (
        f"SELECT {rollup.select} "
        f"INTO {quote_ident(database)}.{quote_ident(rollup_rp)}.{quote_ident(rollup.target)} "
        f"FROM {quote_ident(database)}.{quote_ident(raw_rp)}.{quote_ident(rollup.source)}"
        f"{where} GROUP BY time({ROLLUP_EVERY}), *"
    )


def apply_retention(client: InfluxClient, settings: TelemetrySettings) -> list[str]:
    """Create the database, both policies and the continuous queries (idempotent); 1.x only."""
    version = client.ping()
    if not version.startswith("1."):
        raise TelemetryError(
            f"InfluxDB {version}: create buckets and tasks instead (see telemetry/retention.py)",
            code="INFLUX_UNSUPPORTED",
        )
    db = client.database
    client.create_database()
    client.create_retention_policy(settings.raw_retention_policy, settings.raw_retention,
                                   default=True)  # fmt: skip
    client.create_retention_policy(settings.rollup_retention_policy, settings.rollup_retention)
    for rollup in ROLLUPS:
        client.create_continuous_query(
            rollup.name,
            _select_into(db, settings.raw_retention_policy, settings.rollup_retention_policy,
                         rollup),
            resample_every=ROLLUP_EVERY,
            resample_for="15m",
        )  # fmt: skip
    return [r.name for r in ROLLUPS]


def backfill_rollups(
    client: InfluxClient, settings: TelemetrySettings, start_ns: int, end_ns: int
) -> None:
    """Run the rollups once over a past window (after creating them, or after a long outage)."""
    db = client.database
    where = f" WHERE time >= {int(start_ns)} AND time < {int(end_ns)}"
    for rollup in ROLLUPS:
        client.query(
            _select_into(db, settings.raw_retention_policy, settings.rollup_retention_policy,
                         rollup, where)
        )  # fmt: skip
