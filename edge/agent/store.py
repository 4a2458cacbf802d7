"""The agent's one local SQLite database (WAL): everything that must survive a power cut.

Holds applied command ids with their final ack, the event ``seq`` counter and outbox, the
bounded telemetry buffer, the used-token ledger, reservations and armed pickups, keypad
lockout and the boot counter. One connection shared by the agent's threads behind a lock;
``transaction()`` makes a use case (apply a command and record its ack) atomic.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from edge.agent.errors import StoreError
from edge.protocol.envelopes import Ack, Event, EventType, decode_ack, encode

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, final INTEGER NOT NULL,
    ack TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, seq INTEGER,
    payload BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS used_tokens (
    token_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, compartment TEXT NOT NULL,
    used_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
    compartment TEXT PRIMARY KEY, order_id TEXT NOT NULL, code_hash TEXT NOT NULL,
    expires_at TEXT, deposited INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS pickups (
    compartment TEXT PRIMARY KEY, order_id TEXT NOT NULL, token_id TEXT NOT NULL,
    code_hash TEXT NOT NULL, valid_until TEXT NOT NULL);
"""

OutboxKind = Literal["evt", "ack"]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: OutboxKind
    seq: int | None
    payload: bytes


@dataclass(frozen=True)
class Reservation:
    compartment: str
    order_id: str
    code_hash: str
    expires_at: datetime | None
    deposited: bool


@dataclass(frozen=True)
class ArmedPickup:
    compartment: str
    order_id: str
    token_id: str
    code_hash: str
    valid_until: datetime


class Store:
    """SQLite in WAL mode with ``synchronous=FULL``: a committed event survives a power cut."""

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
            except BaseException:
                if outer and self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"state database: {exc}") from exc

    # --- meta and boot ---------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._q("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._q("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def new_boot(self) -> str:
        """A fresh boot id, counted so ops can see restart loops."""
        boot_id = f"{uuid.uuid4().hex[:12]}"
        with self.transaction():
            count = int(self.get_meta("boot_count") or 0) + 1
            self.set_meta("boot_count", str(count))
            self.set_meta("boot_id", boot_id)
        return boot_id

    # --- events, acks, outbox --------------------------------------------------------

    def last_seq(self) -> int:
        return int(self.get_meta("seq") or 0)

    def append_event(
        self, locker_id: str, type: EventType, payload: dict[str, Any], at: datetime
    ) -> Event:
        """Give the event the next ``seq`` and store it in the outbox, in one transaction."""
        with self.transaction():
            seq = self.last_seq() + 1
            event = Event(locker_id=locker_id, seq=seq, type=type, at=at, payload=payload)
            self.set_meta("seq", str(seq))
            self._q(
                "INSERT INTO outbox (kind, seq, payload) VALUES ('evt', ?, ?)",
                (seq, encode(event)),
            )
        return event

    def append_ack(self, ack: Ack) -> None:
        self._q("INSERT INTO outbox (kind, seq, payload) VALUES ('ack', NULL, ?)", (encode(ack),))

    def outbox_after(self, after_id: int, limit: int) -> list[OutboxRow]:
        rows = self._q(
            "SELECT id, kind, seq, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [OutboxRow(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def outbox_delete(self, row_id: int) -> None:
        self._q("DELETE FROM outbox WHERE id = ?", (row_id,))

    def outbox_delete_many(self, row_ids: list[int]) -> None:
        with self.transaction(), self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in row_ids])

    def outbox_depth(self) -> int:
        return int(self._q("SELECT count(*) FROM outbox")[0][0])

    # --- commands --------------------------------------------------------------------

    def command_ack(self, command_id: str) -> tuple[Ack, bool] | None:
        """The last ack recorded for ``command_id`` and whether it was final."""
        rows = self._q("SELECT ack, final FROM commands WHERE id = ?", (command_id,))
        return (decode_ack(rows[0][0]), bool(rows[0][1])) if rows else None

    def record_command(self, command_id: str, type: str, ack: Ack, *, final: bool) -> None:
        """Remember the ack and queue it for publishing, atomically."""
        with self.transaction():
            self._q(
                "INSERT OR REPLACE INTO commands (id, type, final, ack, updated_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (command_id, type, int(final), encode(ack).decode(), ack.at.isoformat()),
            )
            self.append_ack(ack)

    # --- telemetry buffer ------------------------------------------------------------

    def telemetry_append(self, lines: list[str], max_rows: int) -> int:
        """Buffer ``lines``; past ``max_rows`` the oldest go. Returns how many were dropped."""
        if not lines:
            return 0
        with self.transaction():
            with self._lock:
                self._db.executemany(
                    "INSERT INTO telemetry (line) VALUES (?)", [(item,) for item in lines]
                )
            excess = self.telemetry_depth() - max_rows
            if excess > 0:
                self._q(
                    "DELETE FROM telemetry WHERE id IN"
                    " (SELECT id FROM telemetry ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self.set_meta("dropped_points", str(self.dropped_points() + excess))
        return max(excess, 0)

    def telemetry_batch(self, limit: int) -> list[tuple[int, str]]:
        rows = self._q("SELECT id, line FROM telemetry ORDER BY id LIMIT ?", (limit,))
        return [(int(r[0]), str(r[1])) for r in rows]

    def telemetry_delete_through(self, last_id: int) -> None:
        self._q("DELETE FROM telemetry WHERE id <= ?", (last_id,))

    def telemetry_depth(self) -> int:
        return int(self._q("SELECT count(*) FROM telemetry")[0][0])

    def dropped_points(self) -> int:
        return int(self.get_meta("dropped_points") or 0)

    # --- used-token ledger -----------------------------------------------------------

    def use_token(self, token_id: str, order_id: str, compartment: str, at: datetime) -> bool:
        """Record a token as used; False if it already was (single use)."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO used_tokens (token_id, order_id, compartment, used_at)"
                    " VALUES (?, ?, ?, ?)",
                    (token_id, order_id, compartment, at.isoformat()),
                )
            except sqlite3.IntegrityError:
                return False
            except sqlite3.Error as exc:
                raise StoreError(f"state database: {exc}") from exc
        return True

    def token_used(self, token_id: str) -> bool:
        return bool(self._q("SELECT 1 FROM used_tokens WHERE token_id = ?", (token_id,)))

    def release_token(self, token_id: str) -> None:
        """Undo :meth:`use_token` when the door never opened, so the shopper can try again."""
        self._q("DELETE FROM used_tokens WHERE token_id = ?", (token_id,))

    # --- reservations and armed pickups ----------------------------------------------

    def put_reservation(self, r: Reservation) -> None:
        self._q(
            "INSERT OR REPLACE INTO reservations VALUES (?, ?, ?, ?, ?)",
            (
                r.compartment,
                r.order_id,
                r.code_hash,
                r.expires_at.isoformat() if r.expires_at else None,
                int(r.deposited),
            ),
        )

    def reservations(self) -> dict[str, Reservation]:
        rows = self._q("SELECT * FROM reservations")
        return {
            r[0]: Reservation(
                r[0], r[1], r[2], datetime.fromisoformat(r[3]) if r[3] else None, bool(r[4])
            )
            for r in rows
        }

    def delete_reservation(self, compartment: str) -> None:
        self._q("DELETE FROM reservations WHERE compartment = ?", (compartment,))

    def put_pickup(self, p: ArmedPickup) -> None:
        self._q(
            "INSERT OR REPLACE INTO pickups VALUES (?, ?, ?, ?, ?)",
            (p.compartment, p.order_id, p.token_id, p.code_hash, p.valid_until.isoformat()),
        )

    def pickups(self) -> dict[str, ArmedPickup]:
        rows = self._q("SELECT * FROM pickups")
        return {
            r[0]: ArmedPickup(r[0], r[1], r[2], r[3], datetime.fromisoformat(r[4])) for r in rows
        }

    def delete_pickup(self, compartment: str) -> None:
        self._q("DELETE FROM pickups WHERE compartment = ?", (compartment,))

    # --- housekeeping ---------------------------------------------------------------

    def prune(self, now: datetime, *, commands_days: int = 30, tokens_days: int = 180) -> int:
        """Forget command ids and used tokens long past any retry or expiry; rows removed.

        The platform retries a command only until it expires (minutes to hours) and tokens
        live for days, so these horizons keep idempotency and single use intact while the
        database of a locker running for years stays small.
        """
        removed = 0
        with self.transaction():
            for sql, days in (
                ("DELETE FROM commands WHERE updated_at < ?", commands_days),
                ("DELETE FROM used_tokens WHERE used_at < ?", tokens_days),
            ):
                with self._lock:
                    cursor = self._db.execute(sql, ((now - timedelta(days=days)).isoformat(),))
                removed += cursor.rowcount
        return removed

    # --- small JSON values (runtime config overrides) --------------------------------

    def get_json(self, key: str) -> Any:
        raw = self.get_meta(key)
        return json.loads(raw) if raw is not None else None

    def set_json(self, key: str, value: Any) -> None:
        self.set_meta(key, json.dumps(value))
