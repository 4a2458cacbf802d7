"""The read replica's tile on /ops: configured or not, reachable, streaming, how far behind.

Measured on each fleet page load with one short query on each server (never cached: ops look
here precisely when something is wrong). A replica that is down or lagging must not take the
page down: it becomes the tile's state and text.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, exc
from sqlalchemy.orm import Session

from tuanbox.db.replica import replica_lag
from tuanbox.settings import Settings


@dataclass(frozen=True)
class ReplicaTile:
    state: str  # off | ok | warn | bad
    text: str
    lag_s: float | None = None
    bytes_behind: int | None = None

    @property
    def pill(self) -> str:
        return {"ok": "ok", "warn": "warn", "bad": "bad"}.get(self.state, "")


def replica_tile(read_engine: Engine, primary: Engine, settings: Settings) -> ReplicaTile:
    """Past ``TUANBOX_REPLICA_LAG_WARN_S`` the tile warns: pages show data that old."""
    if not settings.database_replica_url:
        return ReplicaTile(
            "off", "No read replica configured: catalog pages and reports read the primary."
        )
    try:
        with Session(read_engine) as rep, Session(primary) as prim:
            lag = replica_lag(rep, prim)
    except exc.SQLAlchemyError as error:
        first = str(error.orig if isinstance(error, exc.DBAPIError) else error).splitlines()
        return ReplicaTile("bad", f"Read replica unreachable: {first[0] if first else error}")
    if not lag.in_recovery:
        return ReplicaTile("bad", "TUANBOX_DATABASE_REPLICA_URL is not a standby (writable).")
    # Nothing left to replay: no lag, however long ago the last commit was.
    behind = lag.bytes_behind or 0
    lag_s = 0.0 if behind == 0 else (lag.replay_s or 0.0)
    state = "warn" if lag_s > settings.replica_lag_warn_s else "ok"
    text = f"Read replica lag {lag_s:.1f} s ({behind:,} bytes of WAL behind)"
    if state == "warn":
        text += f": catalog pages and reports show data {lag_s:.1f} s old."
    return ReplicaTile(state, text, lag_s=lag_s, bytes_behind=behind)
