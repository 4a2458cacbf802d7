"""The telemetry buffer's own SQLite file (WAL), beside the agent's state database.

Telemetry is the agent's busiest writer: a group commit (fsync'd) every 100 ms under load.
In the state database it shared one connection and lock with the token ledger, so a QR
pickup's ``pending`` row could wait behind a telemetry commit's fsync before its unlock went
out. In a file of its own, with its own connection and lock, it never holds up the ledger,
events or acks; the two files are fsync'd apart.

The bound on what waits to leave the locker (``Store.outbox_max_rows``) still spans both:
the state database asks this one for its depth (kept in memory, so an event append never
takes this lock unless the bound is hit) and drops the oldest points here. This one never
takes the state database's lock while holding its own (the room left by the outbox is read
before), so the two locks cannot deadlock.

Rows from a state database of the previous release are moved here on open: copied and
committed here first, then deleted there. A crash in between leaves them in both; they are
then sent twice and InfluxDB overwrites each point with itself. Nothing is lost.
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edge.agent.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (
    id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL, points INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS telemetry_points ON telemetry (id, points);
"""
# Telemetry points per row: a commit stores its lines in rows of up to this many, joined by
# newlines as line protocol wants them and deflated (line protocol shrinks about 11x), so
# SQLite does one small row's work per hundred points and an SD card sees a tenth of the
# writes. Rows from before hold plain text; both read back the same.
TELEMETRY_ROW_POINTS = 100


@dataclass(frozen=True)
class TelemetryRow:
    id: int
    text: str  # one or more line-protocol lines, newline-separated
    points: int


def telemetry_path(state_path: Path) -> Path:
    """``state.sqlite3`` → ``state-telemetry.sqlite3``, in the same directory."""
    return state_path.with_name(f"{state_path.stem}-telemetry{state_path.suffix}")


class TelemetryDb:
    """SQLite in WAL mode with ``synchronous=FULL``: a committed point survives a power cut."""

    def __init__(self, path: Path, *, floor: int) -> None:
        self.path = path
        self.floor = floor  # points kept even when the outbox fills the shared bound
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, check_same_thread=False, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._depth = self._sum_points()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open telemetry database {path}: {exc}") from exc
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    self._db.execute("COMMIT")
                finally:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    self._depth = self._sum_points()
            except sqlite3.Error as exc:
                raise StoreError(f"telemetry database: {exc}") from exc

    def _sum_points(self) -> int:
        rows = self._db.execute(
            "SELECT coalesce(sum(points), 0) FROM telemetry INDEXED BY telemetry_points"
        ).fetchall()
        return int(rows[0][0])

    def adopt(self, rows: list[tuple[str | bytes, int]]) -> None:
        """Rows moved from the state database of the previous release, oldest first."""
        with self._transaction():
            self._db.executemany("INSERT INTO telemetry (line, points) VALUES (?, ?)", rows)

    # --- the writer's side ----------------------------------------------------------

    def commit(
        self,
        lines: list[str],
        limit: int,
        *,
        dropped: int = 0,
        sent_through: int = 0,
        row_points: int = TELEMETRY_ROW_POINTS,
    ) -> int:
        """One transaction: forget rows InfluxDB took (ids up to ``sent_through``), add
        ``lines``, and keep at most ``limit`` points (the oldest go). ``dropped`` counts
        points the caller already lost; all drops land in ``dropped_points``. Returns the
        points dropped.

        A commit that only forgets sent rows is not fsync'd (``synchronous=NORMAL`` for that
        transaction; WAL keeps it atomic): a power cut may undo it, and then those rows are
        sent again and InfluxDB overwrites each point with itself. An fsync there, while the
        forwarder's next batch was in flight, slowed InfluxDB's own WAL writes on the same
        disk. The next durable commit's fsync covers its frames anyway.
        """
        if not lines and not dropped and not sent_through:
            return 0
        rows = [
            (_pack("\n".join(lines[i : i + row_points])), len(lines[i : i + row_points]))
            for i in range(0, len(lines), row_points)
        ]
        with self._lock:
            relaxed = not rows and not dropped
            if relaxed:
                self._pragma("PRAGMA synchronous=NORMAL")
            try:
                with self._transaction():
                    if sent_through:
                        self._db.execute("DELETE FROM telemetry WHERE id <= ?", (sent_through,))
                    self._db.executemany("INSERT INTO telemetry (line, points) VALUES (?, ?)", rows)
                    gone = self._drop_oldest(self._sum_points() - max(limit, 0))
                    self._count(gone + dropped)
            finally:
                if relaxed:
                    self._pragma("PRAGMA synchronous=FULL")
        return gone + dropped

    def drop_oldest(self, n: int) -> int:
        """Delete the ``n`` oldest points in a transaction of their own, counted as dropped
        (the state database's bound); the points deleted."""
        with self._transaction():
            gone = self._drop_oldest(n)
            self._count(gone)
        return gone

    def _pragma(self, sql: str) -> None:
        try:
            self._db.execute(sql)
        except sqlite3.Error as exc:
            raise StoreError(f"telemetry database: {exc}") from exc

    def _count(self, n: int) -> None:
        if n > 0:
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('dropped_points', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + ?",
                (str(n), n),
            )

    def _drop_oldest(self, n: int) -> int:
        if n <= 0:
            return 0
        whole: int | None = None  # rows up to this id go entirely
        split: tuple[int, int] | None = None  # (id, lines to keep) of the boundary row
        gone = 0
        cursor = self._db.execute(
            "SELECT id, points FROM telemetry INDEXED BY telemetry_points ORDER BY id"
        )
        for row_id, points in cursor:
            if gone + points > n:
                split, gone = (row_id, gone + points - n), n
                break
            whole, gone = row_id, gone + points
            if gone == n:
                break
        cursor.close()
        if whole is not None:
            self._db.execute("DELETE FROM telemetry WHERE id <= ?", (whole,))
        if split is not None:  # the boundary row keeps its newest lines
            row_id, keep = split
            (text,) = self._db.execute(
                "SELECT line FROM telemetry WHERE id = ?", (row_id,)
            ).fetchone()
            self._db.execute(
                "UPDATE telemetry SET line = ?, points = ? WHERE id = ?",
                (_pack("\n".join(_unpack(text).split("\n")[-keep:])), keep, row_id),
            )
        return gone

    # --- the forwarder's side -------------------------------------------------------

    def batch(self, max_points: int, *, after: int = 0) -> list[TelemetryRow]:
        """The oldest rows after id ``after`` (sent already), up to ``max_points`` points
        (always at least one row)."""
        batch: list[TelemetryRow] = []
        total = 0
        with self._lock:
            try:
                cursor = self._db.execute(
                    "SELECT id, line, points FROM telemetry WHERE id > ? ORDER BY id", (after,)
                )
                for row_id, text, points in cursor:
                    if batch and total + points > max_points:
                        break
                    batch.append(TelemetryRow(int(row_id), _unpack(text), int(points)))
                    total += points
                cursor.close()
            except sqlite3.Error as exc:
                raise StoreError(f"telemetry database: {exc}") from exc
        return batch

    def waiting(self, *, after: int) -> bool:
        with self._lock:
            try:
                return bool(
                    self._db.execute(
                        "SELECT 1 FROM telemetry INDEXED BY telemetry_points WHERE id > ? LIMIT 1",
                        (after,),
                    ).fetchall()
                )
            except sqlite3.Error as exc:
                raise StoreError(f"telemetry database: {exc}") from exc

    @property
    def depth(self) -> int:
        """Points waiting (including rows sent but not yet forgotten), as of the last commit:
        read without the lock."""
        return self._depth

    def dropped(self) -> int:
        with self._lock:
            rows = self._db.execute("SELECT value FROM meta WHERE key = 'dropped_points'")
            found = rows.fetchone()
        return int(found[0]) if found else 0

    # For tests: the connection, to trace its statements.
    @property
    def connection(self) -> sqlite3.Connection:
        return self._db


def _pack(text: str) -> bytes:
    return zlib.compress(text.encode(), 1)


def _unpack(value: str | bytes) -> str:
    return zlib.decompress(value).decode() if isinstance(value, bytes) else value
