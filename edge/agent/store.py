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

Modules: ``statedb`` (the connection, schema, transactions, meta values), ``ledger`` (tokens,
reservations, armed pickups) and this one (boot, outbox, commands, telemetry, housekeeping);
``Store`` is the one the agent uses.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from edge.agent.errors import StoreError
from edge.agent.ledger import Ledger
from edge.agent.telemetry_db import (
    TELEMETRY_ROW_POINTS,
    TelemetryDb,
    TelemetryRow,
    telemetry_path,
)
from edge.protocol.envelopes import Ack, Event, EventType, decode_ack, encode

# Events that may be dropped, oldest first, once telemetry is gone and the bound is still hit.
SHEDDABLE_EVENTS: frozenset[str] = frozenset({"pickup_rejected", "sensor_fault"})

OutboxKind = Literal["evt", "ack"]


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: OutboxKind
    seq: int | None
    payload: bytes


class Store(Ledger):
    """SQLite in WAL mode with ``synchronous=FULL``: a committed event survives a power cut.

    ``outbox_max_rows`` bounds events, acks and telemetry points together (None: unbounded).
    """

    def __init__(self, path: Path | str, *, outbox_max_rows: int | None = None) -> None:
        super().__init__(path)
        self.outbox_max_rows = outbox_max_rows
        # Telemetry keeps its newest tenth of the bound (at most 500 points) even when events
        # fill the rest, so the bound is soft by that much.
        self.telemetry_floor = min(500, outbox_max_rows // 10) if outbox_max_rows else 0
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

    # --- boot -------------------------------------------------------------------------

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
