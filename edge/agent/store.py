"""The agent's local SQLite databases (WAL): everything that must survive a power cut.

The state database holds applied command ids with their final ack, the event ``seq`` counter
and outbox, the token ledger, reservations and armed pickups, keypad lockout and the boot
counter. One connection shared by the agent's threads behind a lock; ``transaction()``
makes a use case (apply a command and record its ack) atomic. The bounded telemetry buffer
lives in a file of its own beside it (``telemetry_db``), so that its frequent commits never
hold up a pickup's ledger row.

What waits to leave the locker (events, acks and telemetry points) shares one bound,
``outbox_max_rows``. Past it the oldest telemetry points go first (``dropped_points``) down
to the newest ``telemetry_floor`` of them (so ``locker_health``, which reports the drops,
still gets out), then the oldest events of the kinds in ``SHEDDABLE_EVENTS``
(``dropped_events``); pickups, door events, tamper, unlock failures and acks are never
dropped. Only a person at a door makes those, so they cannot flood the disk; a scanner fed
junk or a flapping probe can.
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
from edge.agent.telemetry_db import (
    TELEMETRY_ROW_POINTS,
    TelemetryDb,
    TelemetryRow,
    telemetry_path,
)
from edge.protocol.envelopes import Ack, Event, EventType, decode_ack, encode

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

# Events that may be dropped, oldest first, once telemetry is gone and the bound is still hit.
SHEDDABLE_EVENTS: frozenset[str] = frozenset({"pickup_rejected", "sensor_fault"})

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
class PendingToken:
    """A QR token recorded before its unlock and not yet confirmed by the board."""

    token_id: str
    order_id: str
    compartment: str
    item_seen: bool  # the infrared bit said a parcel was there when the QR was scanned


@dataclass(frozen=True)
class ArmedPickup:
    compartment: str
    order_id: str
    token_id: str
    code_hash: str
    valid_until: datetime


class Store:
    """SQLite in WAL mode with ``synchronous=FULL``: a committed event survives a power cut.

    ``outbox_max_rows`` bounds events, acks and telemetry points together (None: unbounded).
    """

    def __init__(self, path: Path | str, *, outbox_max_rows: int | None = None) -> None:
        self.path = Path(path)
        self.outbox_max_rows = outbox_max_rows
        # Telemetry keeps its newest tenth of the bound (at most 500 points) even when events
        # fill the rest, so the bound is soft by that much.
        self.telemetry_floor = min(500, outbox_max_rows // 10) if outbox_max_rows else 0
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
        self.telemetry = TelemetryDb(telemetry_path(self.path), floor=self.telemetry_floor)
        self._move_old_telemetry()

    def _move_old_telemetry(self) -> None:
        """Telemetry rows of a state database from before ``telemetry_db``: committed there
        first, then dropped here (a crash in between sends them twice, loses none)."""
        try:
            if not self._db.execute("PRAGMA table_info(telemetry)").fetchall():
                return
            rows = self._db.execute("SELECT line, points FROM telemetry ORDER BY id").fetchall()
            self.telemetry.adopt(rows)
            self._db.execute("DROP TABLE telemetry")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot move telemetry out of {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self.telemetry.close()

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
                "INSERT INTO outbox (kind, seq, payload, shed) VALUES ('evt', ?, ?, ?)",
                (seq, encode(event), int(type in SHEDDABLE_EVENTS)),
            )
            self._keep_bound()
        return event

    def append_ack(self, ack: Ack) -> None:
        with self.transaction():
            self._q(
                "INSERT INTO outbox (kind, seq, payload) VALUES ('ack', NULL, ?)", (encode(ack),)
            )
            self._keep_bound()

    def _keep_bound(self) -> None:
        """Past ``outbox_max_rows``: oldest telemetry first, then the oldest sheddable events."""
        if self.outbox_max_rows is None:
            return
        telemetry = self.telemetry.depth  # no lock taken: read as of its last commit
        over = self.outbox_depth() + telemetry - self.outbox_max_rows
        if over <= 0:
            return
        points = self.telemetry.drop_oldest(min(over, telemetry - self.telemetry_floor))
        if over - points <= 0:
            return
        with self._lock:
            shed = self._db.execute(
                "DELETE FROM outbox WHERE id IN"
                " (SELECT id FROM outbox WHERE shed = 1 ORDER BY id LIMIT ?)",
                (over - points,),
            ).rowcount
        self._count("dropped_events", shed)

    def _count(self, key: str, n: int) -> None:
        if n > 0:
            self.set_meta(key, str(int(self.get_meta(key) or 0) + n))

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
        return int(self._q("SELECT count(*) FROM outbox INDEXED BY outbox_shed")[0][0])

    def dropped_events(self) -> int:
        return int(self.get_meta("dropped_events") or 0)

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

    # --- telemetry buffer (its own database: ``telemetry_db``) ------------------------

    def telemetry_commit(
        self,
        lines: list[str],
        max_points: int,
        *,
        dropped: int = 0,
        sent_through: int = 0,
        row_points: int = TELEMETRY_ROW_POINTS,
    ) -> int:
        """Forget sent rows, add ``lines`` and keep the bounds, in one telemetry transaction
        (``TelemetryDb.commit``); returns the points dropped. The room the outbox leaves is
        read first, so the telemetry lock is never held while waiting for this one."""
        limit = max_points
        if self.outbox_max_rows is not None and (lines or dropped):
            room = self.outbox_max_rows - self.outbox_depth()
            limit = min(limit, max(room, self.telemetry_floor))
        return self.telemetry.commit(
            lines, limit, dropped=dropped, sent_through=sent_through, row_points=row_points
        )

    def telemetry_batch(self, max_points: int, *, after: int = 0) -> list[TelemetryRow]:
        """The oldest rows after id ``after`` (sent already), up to ``max_points`` points
        (always at least one row)."""
        return self.telemetry.batch(max_points, after=after)

    def telemetry_waiting(self, *, after: int) -> bool:
        return self.telemetry.waiting(after=after)

    def telemetry_depth(self) -> int:
        """Points waiting (including rows sent but not yet forgotten, for up to one commit)."""
        return self.telemetry.depth

    def dropped_points(self) -> int:
        # Drops counted here by releases before the telemetry database, then there.
        return int(self.get_meta("dropped_points") or 0) + self.telemetry.dropped()

    # --- token ledger ------------------------------------------------------------------
    # A QR token is ``pending`` from just before its unlock until the board confirms the door
    # released, then ``used``. Either state refuses the token a second time. A ``pending`` row
    # found at start-up is an unlock cut short by a crash: the agent settles it against what
    # the board reads (see ``LockerAgent``), so a crash neither burns the token nor lets it
    # open the door twice.

    def use_token(self, token_id: str, order_id: str, compartment: str, at: datetime) -> bool:
        """Record a token as used; False if it already was (single use)."""
        return self._insert_token(token_id, order_id, compartment, at, "used", None)

    def reserve_token(
        self, token_id: str, order_id: str, compartment: str, at: datetime, *, item_seen: bool
    ) -> bool:
        """Record a token as ``pending`` before its unlock; False if it is already in the ledger."""
        return self._insert_token(token_id, order_id, compartment, at, "pending", item_seen)

    def _insert_token(
        self,
        token_id: str,
        order_id: str,
        compartment: str,
        at: datetime,
        state: str,
        item_seen: bool | None,
    ) -> bool:
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO used_tokens"
                    " (token_id, order_id, compartment, used_at, state, item_seen)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (token_id, order_id, compartment, at.isoformat(), state, item_seen),
                )
            except sqlite3.IntegrityError:
                return False
            except sqlite3.Error as exc:
                raise StoreError(f"state database: {exc}") from exc
        return True

    def confirm_token(self, token_id: str) -> None:
        """The board confirmed the unlock: the token is spent for good."""
        self._q("UPDATE used_tokens SET state = 'used' WHERE token_id = ?", (token_id,))

    def pending_tokens(self) -> list[PendingToken]:
        rows = self._q(
            "SELECT token_id, order_id, compartment, item_seen FROM used_tokens"
            " WHERE state = 'pending' ORDER BY used_at"
        )
        return [PendingToken(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def token_used(self, token_id: str) -> bool:
        """In the ledger at all, ``pending`` or ``used``."""
        return bool(self._q("SELECT 1 FROM used_tokens WHERE token_id = ?", (token_id,)))

    def release_token(self, token_id: str) -> None:
        """Forget a token whose door never opened, so the shopper can try again."""
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
