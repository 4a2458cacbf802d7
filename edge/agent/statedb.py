"""The agent's state database itself: one SQLite connection (WAL, ``synchronous=FULL``)
shared by the agent's threads behind a lock, its schema, transactions and small key values.

``StateDb`` is the plumbing; ``ledger.Ledger`` adds the token ledger, reservations and armed
pickups on it, and ``store.Store`` the outbox, commands and telemetry buffer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edge.agent.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, final INTEGER NOT NULL,
    ack TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, seq INTEGER,
    payload BLOB NOT NULL, shed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS used_tokens (
    token_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, compartment TEXT NOT NULL,
    used_at TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'used', item_seen INTEGER);
CREATE TABLE IF NOT EXISTS reservations (
    compartment TEXT PRIMARY KEY, order_id TEXT NOT NULL, code_hash TEXT NOT NULL,
    expires_at TEXT, deposited INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS pickups (
    compartment TEXT PRIMARY KEY, order_id TEXT NOT NULL, token_id TEXT NOT NULL,
    code_hash TEXT NOT NULL, valid_until TEXT NOT NULL);
"""
# Columns added after the first lockers shipped: (table, column, definition). The telemetry
# table of earlier releases is brought up to date, then moved to the telemetry database.
ADDED_COLUMNS = (
    ("telemetry", "points", "INTEGER NOT NULL DEFAULT 1"),
    ("outbox", "shed", "INTEGER NOT NULL DEFAULT 0"),
    ("used_tokens", "state", "TEXT NOT NULL DEFAULT 'used'"),
    ("used_tokens", "item_seen", "INTEGER"),
)
# Counting the outbox reads this small index instead of every payload.
INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_shed ON outbox (shed, id);
"""


class StateDb:
    """The connection, its schema brought up to date, and the lock every query takes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            for table, column, definition in ADDED_COLUMNS:
                have = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
                if have and column not in have:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
            self._db.executescript(INDEXES)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state database {self.path}: {exc}") from exc
        self._lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Atomic unit of work; nested calls join the outer transaction."""
        with self._lock:
            outer = self._depth == 0
            try:
                if outer:
                    self._db.execute("BEGIN IMMEDIATE")
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                if outer:
                    self._db.execute("COMMIT")
            except BaseException as exc:
                if outer and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if outer and isinstance(exc, sqlite3.Error):
                    raise StoreError(f"state database: {exc}") from exc
                raise

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"state database: {exc}") from exc

    # --- meta -------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._q("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def _count(self, key: str, n: int) -> None:
        if n > 0:
            self.set_meta(key, str(int(self.get_meta(key) or 0) + n))

    # --- small JSON values (runtime config overrides) --------------------------------

    def get_json(self, key: str) -> Any:
        raw = self.get_meta(key)
        return json.loads(raw) if raw is not None else None

    def set_json(self, key: str, value: Any) -> None:
        self.set_meta(key, json.dumps(value))
