"""A streaming replica of the machine's PostgreSQL on another loopback port, for dev and tests.

`tuanbox services up` makes it with ``pg_basebackup -R`` (physical slot ``tuanbox_replica_5433``)
into ``.services/pg-replica/``, with a configuration of its own (Debian keeps the primary's
postgresql.conf and pg_hba.conf outside the data directory) and starts it with ``pg_ctl``; as
root the server runs as the ``postgres`` account, which refuses to run as root. It replicates
every database of the primary, so a test database created on 5432 is on 5433 moments later.

The primary must accept replication connections from 127.0.0.1: ``wal_level`` replica or
logical, ``max_wal_senders`` > 0, and a pg_hba ``replication`` rule (``all`` does not cover
replication). As root, ``ensure_primary`` adds what is missing (ALTER SYSTEM and a restart
for the first two, a marked pg_hba line and a reload for the third), idempotently; as
another user it says what to change.

`services down` stops the replica, drops its slot (a slot nobody reads makes the primary keep
WAL for ever) and removes its directory; the next `up` takes a fresh base backup.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

# A kept standby that does not stream again within this is rebuilt from a new base backup.
RESUME_TIMEOUT_S = 20.0
SLOT_PREFIX = "tuanbox_replica_"  # + the replica's port: two replicas, two slots
HBA_MARK = "# tuanbox devservices: local streaming replica"
HBA_LINE = f"host    replication     postgres        127.0.0.1/32            trust  {HBA_MARK}"
# Settings a hot standby must hold at least as high as its primary (it refuses to start).
MATCHED = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
)
REPLICA_CONF = """\
# Written by tuanbox devservices (pgreplica.py); the primary is 127.0.0.1:{primary_port}.
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
hot_standby = on
# Long report queries are not cancelled by vacuum on the primary.
hot_standby_feedback = on
shared_buffers = 64MB
logging_collector = off
{matched}
"""
REPLICA_HBA = """\
local   all             all                                     trust
host    all             all             127.0.0.1/32            trust
"""


class ReplicaError(RuntimeError):
    code = "REPLICA_UNAVAILABLE"


@dataclass(frozen=True)
class ReplicaStatus:
    in_recovery: bool
    streaming: bool
    replay_lag_s: float | None  # now() − last replayed commit (grows while the primary idles)
    bytes_behind: int | None  # primary's WAL not yet replayed (None: primary not asked)
    same_system: bool  # a copy of *this* primary (system identifiers equal)

    def describe(self) -> str:
        lag = (
            "no commit replayed yet"
            if self.replay_lag_s is None
            else f"last commit replayed {self.replay_lag_s:.2f}s ago"
        )
        behind = "" if self.bytes_behind is None else f", {self.bytes_behind} bytes behind"
        state = "streaming" if self.streaming else "NOT streaming"
        return f"standby {state}, {lag}{behind}"


@dataclass
class Replica:
    state_dir: Path
    primary_port: int = 5432
    port: int = 5433
    host: str = "127.0.0.1"
    user: str = "postgres"

    def __post_init__(self) -> None:
        # Commands run from the replica's own directory: every path handed to them is absolute.
        self.state_dir = self.state_dir.resolve()

    @property
    def slot(self) -> str:
        return f"{SLOT_PREFIX}{self.port}"

    @property
    def root(self) -> Path:
        return self.state_dir / "pg-replica"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "postgresql.log"

    # -- primary ---------------------------------------------------------------------------
    def _connect(
        self, port: int, *, replication: bool = False
    ) -> psycopg.Connection[tuple[object, ...]]:
        conninfo = (
            f"host={self.host} port={port} user={self.user} dbname=postgres connect_timeout=3"
        )
        if replication:
            conninfo += " replication=true"
        return psycopg.connect(conninfo, autocommit=True)

    def ensure_primary(self, log: Callable[[str], None] = print) -> None:
        """Make the primary accept our replication connection (as root), or say why not."""
        with self._connect(self.primary_port) as conn:
            wal_level = _show(conn, "wal_level")
            senders = int(_show(conn, "max_wal_senders"))
            hba_file = _show(conn, "hba_file")
        if wal_level == "minimal" or senders < 2:
            self._require_root(f"wal_level={wal_level}, max_wal_senders={senders}")
            log("primary: wal_level=replica, max_wal_senders=10 (restart)")
            with self._connect(self.primary_port) as conn:
                conn.execute("ALTER SYSTEM SET wal_level = 'replica'")
                conn.execute("ALTER SYSTEM SET max_wal_senders = 10")
            _restart_primary()
        if not self._replication_allowed():
            self._require_root("pg_hba.conf has no replication rule for 127.0.0.1")
            text = Path(hba_file).read_text()
            if HBA_MARK not in text:
                log(f"primary: allow replication from 127.0.0.1 ({hba_file}, reload)")
                with open(hba_file, "a") as out:
                    out.write(("" if text.endswith("\n") else "\n") + HBA_LINE + "\n")
            with self._connect(self.primary_port) as conn:
                conn.execute("SELECT pg_reload_conf()")
            deadline = time.monotonic() + 10
            while not self._replication_allowed():
                if time.monotonic() > deadline:
                    raise ReplicaError(f"{hba_file} still refuses replication after a reload")
                time.sleep(0.1)

    def _replication_allowed(self) -> bool:
        try:
            with self._connect(self.primary_port, replication=True):
                return True
        except psycopg.OperationalError as exc:
            if "pg_hba.conf" in str(exc) or "replication" in str(exc):
                return False
            raise

    def _require_root(self, what: str) -> None:
        if os.geteuid() != 0:
            raise ReplicaError(
                f"the primary PostgreSQL does not allow a local streaming replica ({what}); as "
                "root, `tuanbox services up` sets wal_level=replica and max_wal_senders=10 and "
                f"adds to pg_hba.conf: {HBA_LINE}"
            )

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, log: Callable[[str], None] = print) -> None:
        """Base-backup (when there is no data directory yet) and start the standby. A kept
        standby that cannot stream again (its slot dropped, the WAL it needs gone) is
        replaced by a fresh base backup, once."""
        with self._lock():
            self.ensure_primary(log)
            fresh = not (self.data_dir / "standby.signal").exists()
            if not fresh and not self._slot_exists():
                # It would retry forever against a slot that is gone: rebuild at once rather
                # than after a start that cannot stream has timed out.
                log("the kept replica's slot is gone; taking a new base backup")
                self._halt()
                fresh = True
            if fresh:
                self._base_backup(log)
            try:
                self._launch(log, timeout_s=60 if fresh else RESUME_TIMEOUT_S)
            except ReplicaError as exc:
                if fresh:
                    raise
                log(f"the kept replica does not stream ({exc}); taking a new base backup")
                self._halt()
                self._base_backup(log)
                self._launch(log, timeout_s=60)

    def _launch(self, log: Callable[[str], None], timeout_s: float) -> None:
        self._write_conf()
        if not self._pg_ctl_status():
            log(f"starting the replica on {self.host}:{self.port}")
            self._as_owner([self._bin("pg_ctl"), "-D", str(self.data_dir), "-l",
                            str(self.log_file), "-w", "-t", "60", "start"])  # fmt: skip
        self._wait_streaming(timeout_s)

    def _halt(self) -> None:
        if self._pg_ctl_status():
            self._as_owner([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast",
                            "-w", "stop"])  # fmt: skip

    def _wait_streaming(self, timeout_s: float) -> None:
        # pg_ctl -w returns once the standby accepts connections; its WAL receiver follows.
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.probe()
                return
            except ConnectionError as exc:
                if time.monotonic() > deadline:
                    raise ReplicaError(f"the replica is not streaming: {exc}") from exc
            time.sleep(0.1)

    def stop(self, log: Callable[[str], None] = print) -> bool:
        """Stop the standby, drop its slot and remove its directory; False if none was ours."""
        with self._lock():
            if not self.root.exists():
                return False
            self._halt()
            self._drop_slot()
            shutil.rmtree(self.root)
            log("stopped pg-replica (slot dropped, data removed)")
            return True

    def status(self) -> ReplicaStatus:
        """Connects to both servers; raises OSError/ConnectionError-like errors when down."""
        try:
            with self._connect(self.port) as rep:
                row = rep.execute(
                    "SELECT pg_is_in_recovery(),"
                    " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,"
                    " (SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'),"
                    " pg_last_wal_replay_lsn()::text,"
                    " (SELECT system_identifier FROM pg_control_system())"
                ).fetchone()
            assert row is not None
            in_recovery, lag, streaming, replay_lsn, system_id = row
            with self._connect(self.primary_port) as prim:
                prow = prim.execute(
                    "SELECT (SELECT system_identifier FROM pg_control_system()),"
                    " CASE WHEN %s::text IS NULL THEN NULL"
                    " ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), %s::text::pg_lsn)::bigint END",
                    (replay_lsn, replay_lsn),
                ).fetchone()
            assert prow is not None
        except psycopg.Error as exc:
            lines = str(exc).strip().splitlines() or [type(exc).__name__]
            raise ConnectionError(lines[0]) from exc
        return ReplicaStatus(
            in_recovery=bool(in_recovery),
            streaming=bool(streaming),
            replay_lag_s=None if lag is None else float(str(lag)),
            bytes_behind=None if prow[1] is None else int(str(prow[1])),
            same_system=prow[0] == system_id,
        )

    def probe(self) -> str:
        """The service probe: a streaming standby of this primary, or an error."""
        st = self.status()
        if not st.in_recovery:
            raise ConnectionError(f"{self.host}:{self.port} is not a standby (not in recovery)")
        if not st.same_system:
            raise ConnectionError(f"{self.host}:{self.port} is a standby of another primary")
        if not st.streaming:
            raise ConnectionError(f"{self.host}:{self.port} is not streaming from the primary")
        return st.describe()

    # -- helpers ---------------------------------------------------------------------------
    def _base_backup(self, log: Callable[[str], None]) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)  # a half-made copy from an interrupted run
        self.root.mkdir(parents=True)
        self._chown(self.root)
        self._drop_slot()
        log(f"pg_basebackup of 127.0.0.1:{self.primary_port} into {self.data_dir}")
        argv = [self._bin("pg_basebackup"), "-h", self.host, "-p", str(self.primary_port),
                "-U", self.user, "-D", str(self.data_dir), "-R", "-X", "stream",
                "-C", "-S", self.slot, "-c", "fast", "--no-password"]  # fmt: skip
        self._as_owner(argv, timeout=600)

    def _write_conf(self) -> None:
        with self._connect(self.primary_port) as conn:
            matched = "\n".join(f"{name} = {_show(conn, name)}" for name in MATCHED)
        conf = REPLICA_CONF.format(
            primary_port=self.primary_port, port=self.port, socket_dir=self.root, matched=matched
        )
        files = (("postgresql.conf", conf), ("pg_hba.conf", REPLICA_HBA), ("pg_ident.conf", ""))
        for name, text in files:
            path = self.data_dir / name
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
                self._chown(path)

    def _slot_exists(self) -> bool:
        with self._connect(self.primary_port) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
            ).fetchone()
        return found is not None

    def _drop_slot(self) -> None:
        with self._connect(self.primary_port) as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE slot_name = %s AND NOT active",
                (self.slot,),
            )

    def _pg_ctl_status(self) -> bool:
        if not self.data_dir.exists():
            return False
        res = subprocess.run(  # noqa: S603
            [*self._owner_prefix(), self._bin("pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip
        return res.returncode == 0

    def _bin(self, tool: str) -> str:
        with self._connect(self.primary_port) as conn:
            major = int(_show(conn, "server_version_num")) // 10000
        path = Path(f"/usr/lib/postgresql/{major}/bin/{tool}")
        if path.exists():
            return str(path)
        found = shutil.which(tool)
        if not found:
            raise ReplicaError(f"{tool} (PostgreSQL {major}) is not installed")
        return found

    def _owner_prefix(self) -> list[str]:
        # PostgreSQL refuses to run as root: root runs the replica as the postgres account.
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
            if path.is_dir():
                path.chmod(0o700)

    def _as_owner(self, argv: list[str], timeout: float = 120) -> None:
        res = subprocess.run(  # noqa: S603
            [*self._owner_prefix(), *argv], capture_output=True, text=True, check=False,
            timeout=timeout, cwd=self.root,
        )  # fmt: skip
        if res.returncode != 0:
            tail = ""
            if self.log_file.exists():
                tail = "\n".join(self.log_file.read_text().splitlines()[-10:])
            raise ReplicaError(
                f"{Path(argv[0]).name} failed ({res.returncode}): {res.stderr.strip()}\n{tail}"
            )

    @contextmanager
    def _lock(self) -> Iterator[None]:
        # Several engineers (and CI) may run `services up` at once in one checkout.
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / "pg-replica.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _show(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str:
    # SHOW takes no parameters; current_setting does.
    row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    assert row is not None
    return str(row[0])


def _restart_primary() -> None:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions:
        raise ReplicaError("cannot restart the primary: no cluster in /etc/postgresql")
    subprocess.run(  # noqa: S603
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"],  # noqa: S607
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
