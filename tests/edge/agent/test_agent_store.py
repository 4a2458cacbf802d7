"""The local SQLite state: seq across restarts, outbox order, ledger, acks, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.agent.store import Store
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
