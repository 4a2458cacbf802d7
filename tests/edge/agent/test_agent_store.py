"""The local SQLite state: seq across restarts, outbox order, ledger, acks, pruning."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.agent.store import Store
from edge.agent.telemetry import TelemetryBuffer
from edge.agent.telemetry_db import telemetry_path
from edge.protocol.envelopes import Ack, decode_event


def test_seq_and_outbox_survive_a_reopen(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    store = Store(db)
    at = datetime.now(UTC)
    for n in range(3):
        store.append_event("L1", "door_opened", {"n": n}, at)
    store.outbox_delete(store.outbox_after(0, 1)[0].id)  # seq 1 was PUBACKed
    store.close()
    again = Store(db)
    assert again.last_seq() == 3
    assert again.append_event("L1", "door_closed", {}, at).seq == 4
    rows = again.outbox_after(0, 10)
    assert [r.seq for r in rows] == [2, 3, 4]
    assert [decode_event(r.payload).payload.get("n") for r in rows] == [1, 2, None]
    again.close()


def test_failed_transaction_leaves_no_trace(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    ack = Ack(command_id="c1", status="done", at=datetime.now(UTC))

    def apply_then_crash() -> None:
        with store.transaction():
            store.record_command("c1", "assign", ack, final=True)
            store.append_event("L1", "tamper", {}, datetime.now(UTC))
            raise RuntimeError("crash in the middle of applying a command")

    with pytest.raises(RuntimeError):
        apply_then_crash()
    assert store.command_ack("c1") is None
    assert store.last_seq() == 0
    assert store.outbox_depth() == 0
    store.close()


def test_token_ledger_is_single_use(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    now = datetime.now(UTC)
    assert store.use_token("t1", "o1", "0-1", now)
    assert not store.use_token("t1", "o1", "0-1", now)
    assert store.token_used("t1")
    store.release_token("t1")
    assert store.use_token("t1", "o1", "0-1", now)
    store.close()


def test_prune_forgets_only_old_ids(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    now = datetime.now(UTC)
    old = now - timedelta(days=400)
    store.record_command("old", "sync", Ack(command_id="old", status="done", at=old), final=True)
    store.record_command("new", "sync", Ack(command_id="new", status="done", at=now), final=True)
    store.use_token("t-old", "o", "0-1", old)
    store.use_token("t-new", "o", "0-1", now)
    assert store.prune(now) == 2
    assert store.command_ack("old") is None and store.command_ack("new") is not None
    assert not store.token_used("t-old") and store.token_used("t-new")
    store.close()


def test_boot_ids_are_new_each_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    first, second = store.new_boot(), store.new_boot()
    assert first != second
    assert store.get_meta("boot_count") == "2"
    store.close()


def _events(store: Store, type_: str) -> list[dict[str, object]]:
    rows = store.outbox_after(0, 100_000)
    return [e.payload for e in (decode_event(r.payload) for r in rows if r.kind == "evt")
            if e.type == type_]  # fmt: skip


def test_outbox_bound_sheds_oldest_telemetry_then_junk_never_pickups_or_doors(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.sqlite3", outbox_max_rows=100)
    buffer = TelemetryBuffer(store, 1000)
    at = datetime.now(UTC)
    buffer.append([f"m v={i}i {i}" for i in range(80)])
    for n in range(10):
        store.append_event("L1", "door_opened", {"compartment": "0-1", "n": n}, at)
    store.append_ack(Ack(command_id="c1", status="done", at=at))
    assert store.telemetry_depth() == 80 and store.dropped_points() == 0  # 91: under the bound

    # events past the bound push the oldest telemetry out, down to its floor (a tenth)
    for n in range(20):
        store.append_event("L1", "picked_up", {"compartment": "0-2", "order_id": f"o{n}"}, at)
    assert store.telemetry_depth() == 69 and store.dropped_points() == 11
    for n in range(100):  # a scanner fed junk while the broker is away
        store.append_event("L1", "pickup_rejected", {"reason": "UNKNOWN_INPUT", "n": n}, at)
    assert store.telemetry_depth() == 10 and store.dropped_points() == 70
    assert store.telemetry_batch(1)[0].text.split("\n")[0] == "m v=70i 70"  # the newest kept
    # then the oldest junk goes, counted; the bound holds
    assert store.outbox_depth() == 90 and store.dropped_events() == 41
    assert [p["n"] for p in _events(store, "pickup_rejected")] == list(range(41, 100))

    # a door closing past the bound: another junk scan goes, never a door event or pickup
    store.append_event("L1", "door_closed", {"compartment": "0-1"}, at)
    assert store.dropped_events() == 42
    assert len(_events(store, "door_opened")) == 10 and len(_events(store, "door_closed")) == 1
    assert len(_events(store, "picked_up")) == 20

    # no junk left: door events, pickups and acks are stored past the bound, never dropped
    for n in range(80):
        store.append_event("L1", "door_opened", {"compartment": "0-3", "n": n}, at)
    store.append_ack(Ack(command_id="c2", status="done", at=at))
    assert _events(store, "pickup_rejected") == []
    assert store.outbox_depth() == 10 + 1 + 20 + 1 + 80 + 1
    assert store.dropped_events() == 100
    assert store.telemetry_depth() == 10  # telemetry keeps its floor
    # and fresh telemetry displaces the oldest telemetry, not events
    buffer.append(["m v=1000i 1000"])
    assert store.telemetry_depth() == 10 and store.dropped_points() == 71
    assert store.telemetry_batch(100)[-1].text.split("\n")[-1] == "m v=1000i 1000"
    seqs = [decode_event(r.payload).seq for r in store.outbox_after(0, 1000) if r.kind == "evt"]
    assert seqs == sorted(seqs) and seqs[-1] == store.last_seq() == 211
    store.close()


def test_telemetry_depth_is_exact_across_partial_drops(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    buffer = TelemetryBuffer(store, 250)
    for start in range(0, 1000, 130):  # rows of 100 and 30 points, dropped mid-row
        buffer.append([f"m v={i}i {i}" for i in range(start, min(start + 130, 1000))])
        kept = [line for r in store.telemetry_batch(10_000) for line in r.text.split("\n")]
        assert store.telemetry_depth() == len(kept) <= 250
        end = min(start + 130, 1000)
        assert kept == [f"m v={i}i {i}" for i in range(max(0, end - 250), end)]
    assert store.dropped_points() == 750
    store.close()


def test_a_database_from_the_previous_release_is_migrated_in_place(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as old:  # the tables as the first lockers shipped them
        old.executescript(
            """
            CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,
                seq INTEGER, payload BLOB NOT NULL);
            CREATE TABLE telemetry (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
            CREATE TABLE used_tokens (token_id TEXT PRIMARY KEY, order_id TEXT NOT NULL,
                compartment TEXT NOT NULL, used_at TEXT NOT NULL);
            INSERT INTO outbox (kind, seq, payload) VALUES ('ack', NULL, x'7b7d');
            INSERT INTO telemetry (line) VALUES ('m v=0i 0'), ('m v=1i 1'), ('m v=2i 2');
            INSERT INTO used_tokens VALUES ('t-old', 'o', '0-1', '2026-01-01T00:00:00+00:00');
            """
        )
    old.close()
    store = Store(db, outbox_max_rows=1000)
    buffer = TelemetryBuffer(store, 4)
    assert store.outbox_depth() == 1
    assert store.token_used("t-old") and store.pending_tokens() == []
    assert store.telemetry_depth() == 3
    buffer.append(["m v=3i 3", "m v=4i 4"])  # one past the bound: the oldest plain row goes
    lines = [line for r in store.telemetry_batch(100) for line in r.text.split("\n")]
    assert lines == [f"m v={i}i {i}" for i in range(1, 5)]
    assert store.dropped_points() == 1
    store.close()
    with sqlite3.connect(db) as state:  # moved to the telemetry database, not copied
        assert not state.execute("PRAGMA table_info(telemetry)").fetchall()
    state.close()
    again = Store(db, outbox_max_rows=1000)
    assert again.telemetry_depth() == 4 and again.dropped_points() == 1
    again.close()


def test_a_pickup_ledger_row_never_waits_behind_a_telemetry_commit(tmp_path: Path) -> None:
    """A telemetry commit stalled mid-transaction (as in a slow fsync) holds its own file and
    lock only: the QR path's ``pending`` row and a door event still commit meanwhile."""
    store = Store(tmp_path / "s.sqlite3", outbox_max_rows=1000)
    buffer = TelemetryBuffer(store, 10_000)
    inside, release = threading.Event(), threading.Event()

    def stall(statement: str) -> None:
        if statement.startswith("INSERT INTO telemetry"):
            inside.set()
            release.wait(30)

    store.telemetry.connection.set_trace_callback(stall)
    writer = threading.Thread(target=buffer.append, args=(["m v=1i 1"],))
    writer.start()
    assert inside.wait(10)
    done: list[object] = []

    def pickup() -> None:
        now = datetime.now(UTC)
        with store.transaction():
            done.append(store.reserve_token("t1", "o1", "0-1", now, item_seen=True))
        done.append(store.append_event("L1", "door_opened", {"compartment": "0-1"}, now).seq)

    ledger = threading.Thread(target=pickup)
    ledger.start()
    ledger.join(10)
    stalled = writer.is_alive()
    release.set()
    writer.join(10)
    store.telemetry.connection.set_trace_callback(None)
    assert done == [True, 1] and stalled  # committed while the telemetry commit was stuck
    assert store.telemetry_depth() == 1
    store.close()


def test_telemetry_lives_in_its_own_file(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    store = Store(db)
    TelemetryBuffer(store, 100).append(["m v=1i 1", "m v=2i 2"])
    store.close()
    with sqlite3.connect(db) as state:
        tables = {r[0] for r in state.execute("SELECT name FROM sqlite_master")}
    state.close()
    assert "telemetry" not in tables and "used_tokens" in tables
    with sqlite3.connect(telemetry_path(db)) as points:
        assert points.execute("SELECT sum(points) FROM telemetry").fetchone()[0] == 2
    points.close()
    again = Store(db)
    assert again.telemetry_depth() == 2
    again.close()
