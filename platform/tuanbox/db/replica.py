"""Reads routed to the read replica: its engine, sessions that refuse writes, lag and fences.

Routing is explicit. Code that may read slightly old data (catalog pages, reports, exports)
asks for a *read session*; everything else keeps using the primary's sessions. A read session
runs on ``TUANBOX_DATABASE_REPLICA_URL`` when it is set and on the primary otherwise, and it
refuses writes either way, loudly:

- ORM writes (a flush with new, changed or deleted objects; ``insert``/``update``/``delete``
  through ``session.execute``) raise ``ReadOnlySessionError`` before reaching the database;
- on PostgreSQL every transaction is ``READ ONLY``, so raw SQL that writes fails too
  (``cannot execute INSERT in a read-only transaction``); a hot-standby replica refuses
  writes by itself as well.

Never read-your-write from a read session: a replica replays the primary's commits some
milliseconds (under load, seconds) later. The order page after checkout, pickup, payment
callbacks and anything that reads then writes stay on the primary. See notes/replica.md.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from tuanbox.db.engine import SETTINGS_KEY, make_engine
from tuanbox.errors import TuanboxError

if TYPE_CHECKING:
    from tuanbox.settings import Settings

# session.info keys: this session refuses writes; this session reads a replica.
READ_ONLY_KEY = "tuanbox_read_only"
ON_REPLICA_KEY = "tuanbox_on_replica"
# A replica that does not answer within this fails the read fast instead of hanging a page.
REPLICA_CONNECT_TIMEOUT_S = 3


class ReadOnlySessionError(TuanboxError):
    """A write through a read session: that code path must use the primary's sessions."""

    code = "READ_ONLY_SESSION"


def make_read_engine(settings: Settings, primary: Engine) -> Engine:
    """The engine reads go to: a new engine on the replica when one is configured (the
    caller disposes it, see ``owns_read_engine``), else ``primary`` itself (shared pool)."""
    url = settings.database_replica_url
    if not url:
        return primary
    return make_engine(url, connect_args={"connect_timeout": REPLICA_CONNECT_TIMEOUT_S})


def owns_read_engine(read_engine: Engine, primary: Engine) -> bool:
    """Whether ``read_engine`` is a replica engine of its own (to dispose) or the primary."""
    return read_engine is not primary


def make_read_session_factory(
    engine: Engine, settings: Settings, *, on_replica: bool | None = None
) -> sessionmaker[Session]:
    """Read-only sessions on ``engine`` carrying ``settings``. ``on_replica`` defaults to
    whether ``engine`` is the configured replica's (compared by URL)."""
    if on_replica is None:
        on_replica = bool(settings.database_replica_url) and _same_url(
            engine, settings.database_replica_url or ""
        )
    info: dict[str, Any] = {SETTINGS_KEY: settings, READ_ONLY_KEY: True, ON_REPLICA_KEY: on_replica}
    factory = sessionmaker(bind=engine, expire_on_commit=False, info=info)
    event.listen(factory, "after_begin", _read_only_transaction)
    event.listen(factory, "before_flush", _refuse_flush)
    event.listen(factory, "do_orm_execute", _refuse_dml)
    return factory


def is_read_only(session: Session) -> bool:
    return bool(session.info.get(READ_ONLY_KEY))


def on_replica(session: Session) -> bool:
    """Whether this session reads the replica (False: a read-only session on the primary)."""
    return bool(session.info.get(ON_REPLICA_KEY))


# --- one cached engine per URL, for entry points without an app (Celery tasks, CLI) -------

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def replica_factory(settings: Settings, primary: Engine | None = None) -> sessionmaker[Session]:
    """Read-only sessions for these settings: on the replica when configured, else on
    ``primary`` (or on a cached engine of ``settings.database_url``). Engines made here are
    kept per URL for the process's life; ``dispose_read_engines`` closes them."""
    url = settings.database_replica_url
    if url:
        return make_read_session_factory(_cached_engine(url, replica=True), settings)
    engine = primary if primary is not None else _cached_engine(settings.database_url)
    return make_read_session_factory(engine, settings, on_replica=False)


def dispose_read_engines() -> None:
    with _lock:
        while _engines:
            _, engine = _engines.popitem()
            engine.dispose()


def _cached_engine(url: str, *, replica: bool = False) -> Engine:
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            kwargs: dict[str, Any] = {}
            if replica:
                kwargs["connect_args"] = {"connect_timeout": REPLICA_CONNECT_TIMEOUT_S}
            engine = _engines[url] = make_engine(url, **kwargs)
        return engine


# --- the guards ---------------------------------------------------------------------------


def _read_only_transaction(_session: Session, _transaction: object, connection: Any) -> None:
    # The first statement of every transaction: raw SQL that writes fails in PostgreSQL too.
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")


def _refuse_flush(session: Session, _context: object, _instances: object) -> None:
    if session.new or session.dirty or session.deleted:
        raise ReadOnlySessionError(
            "a read session (replica) cannot write; use the primary's session for this path"
        )


def _refuse_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        raise ReadOnlySessionError(
            "a read session (replica) cannot write; use the primary's session for this path"
        )


def _same_url(engine: Engine, url: str) -> bool:
    from sqlalchemy.engine import make_url

    a, b = engine.url, make_url(url)
    return (a.host, a.port, a.database) == (b.host, b.port, b.database)


# --- lag and fences -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaLag:
    """How far the replica is behind. ``replay_s`` is the time since the last transaction
    it replayed (grows while the primary is idle, so ``caught_up`` says whether it has
    replayed all it received); ``bytes_behind`` is the primary's WAL not yet replayed."""

    in_recovery: bool
    replay_s: float | None
    caught_up: bool
    bytes_behind: int | None = None


def replica_lag(replica: Session, primary: Session | None = None) -> ReplicaLag:
    """Measure on the replica (and, given the primary's session, the bytes behind)."""
    row = replica.execute(
        text(
            "SELECT pg_is_in_recovery(),"
            # clock_timestamp(), not now(): a transaction older than the last replayed commit
            # would measure a negative lag.
            " EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()),"
            " pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn(),"
            " pg_last_wal_replay_lsn()::text"
        )
    ).one()
    in_recovery, replay_s, caught_up, replay_lsn = row
    behind: int | None = None
    if primary is not None and replay_lsn is not None:
        behind = int(
            primary.execute(
                text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:lsn AS pg_lsn))"),
                {"lsn": replay_lsn},
            ).scalar_one()
        )
    return ReplicaLag(
        in_recovery=bool(in_recovery),
        replay_s=None if replay_s is None else max(0.0, float(replay_s)),
        caught_up=bool(caught_up),
        bytes_behind=behind,
    )


def primary_lsn(primary: Session) -> str | None:
    """The primary's current WAL position (None off PostgreSQL): what a fence waits for."""
    if primary.get_bind().dialect.name != "postgresql":
        return None
    return str(primary.execute(text("SELECT pg_current_wal_lsn()::text")).scalar_one())


def wait_replayed(replica: Session, lsn: str, timeout_s: float = 0.5) -> bool:
    """Poll until the replica has replayed ``lsn`` (True) or the deadline passes (False).
    Read-committed statements that follow in the same session see what was replayed."""
    deadline = time.monotonic() + timeout_s
    query = text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), CAST(:lsn AS pg_lsn)) >= 0")
    while True:
        if replica.execute(query, {"lsn": lsn}).scalar_one():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
