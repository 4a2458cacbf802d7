"""Append-only at the database, and `tuanbox audit verify` catching what a superuser did anyway."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.platform.audit.conftest import Committed
from tests.support import free_port
from tuanbox.audit.cli import EXIT_BROKEN, EXIT_INTACT, app
from tuanbox.audit.models import AuditAnchor, AuditChainHead
from tuanbox.audit.services import Actor, record
from tuanbox.audit.verify import verify_log

OPS = Actor("u-ops", "ops")


def fill(db: Committed, n: int = 6) -> None:
    for i in range(1, n + 1):
        with db.sessions.begin() as s:
            record(s, OPS, "sku.restock", "sku", f"s-{i}", reason=f"delivery {i}",
                   before={"stock_on_hand": i}, after={"stock_on_hand": i + 10})  # fmt: skip


def as_superuser(db: Committed, *statements: str) -> None:
    """Behind the triggers' back, as an attacker with the database's superuser would."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for statement in statements:
            conn.exec_driver_sql(statement)


def verify() -> tuple[int, str]:
    result = CliRunner().invoke(app, ["verify"])
    return result.exit_code, result.output


REFUSED = (
    "UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 2",
    "DELETE FROM audit_log WHERE seq = 2",
    "TRUNCATE audit_log",
    "UPDATE audit_chain SET seq = 1",
    "DELETE FROM audit_chain",
    "UPDATE audit_anchors SET seq = 1",
    "DELETE FROM audit_anchors",
)


def test_the_database_refuses_changes(committed: Committed) -> None:
    fill(committed, 3)
    with committed.sessions.begin() as s:
        head = s.get_one(AuditChainHead, 1)
        s.add(AuditAnchor(seq=head.seq, hash=head.hash, entries=3, chain_id=31337,
                          contract="0x" + "1" * 40, tx_hash="0x" + "2" * 64, block_number=1,
                          block_time=1))  # fmt: skip
    for statement in REFUSED:
        with (
            pytest.raises(DBAPIError, match=r"append-only|only moves forward"),
            committed.engine.begin() as conn,
        ):
            conn.exec_driver_sql(statement)
    with committed.sessions() as session:
        assert verify_log(session).ok


def test_an_entry_cannot_commit_without_its_chain_position(committed: Committed) -> None:
    with (
        pytest.raises(IntegrityError, match="committed without its chain position"),
        committed.engine.begin() as conn,
    ):
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, actor_id, actor_role, action, subject_type, "
                "subject_id, details) VALUES (now(), 'x', 'ops', 'a', 't', 's', '{}')"
            )
        )


def test_verify_passes_an_intact_log(cli_env: Committed) -> None:
    fill(cli_env)
    code, output = verify()
    assert code == EXIT_INTACT, output
    assert "audit log intact: 6 entries, head seq 6" in output


TAMPERING: dict[str, tuple[tuple[str, ...], int, str]] = {
    "edited": (("UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 3",), 3, "edited"),
    "edited_before_state": (
        ("UPDATE audit_log SET before_state = '{\"stock_on_hand\": 99}' WHERE seq = 4",),
        4,
        "edited",
    ),
    "deleted": (("DELETE FROM audit_log WHERE seq = 3",), 3, "missing"),
    "reordered": (
        (
            "UPDATE audit_log SET seq = 1000 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = 4",
            "UPDATE audit_log SET seq = 4 WHERE seq = 1000",
        ),
        3,
        "link",
    ),
    "deleted_and_renumbered": (
        (
            "DELETE FROM audit_log WHERE seq = 2",
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq > 2",
            "UPDATE audit_log SET seq = seq - 1001 WHERE seq > 1000",
        ),
        2,
        "link",
    ),
    "tail_deleted": (("DELETE FROM audit_log WHERE seq >= 5",), 5, "missing"),
    "head_edited": (("UPDATE audit_chain SET hash = repeat('0', 64)",), 6, "head"),
    "written_around": (
        (
            "INSERT INTO audit_log (at, actor_id, actor_role, action, subject_type, subject_id, "
            "details) VALUES (now(), 'x', 'ops', 'a', 't', 's', '{}')",
        ),
        7,
        "unsealed",
    ),
}


def test_verify_names_the_first_bad_seq(committed: Committed) -> None:
    """Each kind of tampering in a transaction of its own, checked there and rolled back."""
    fill(committed)
    found = {}
    for case, (statements, _, _) in TAMPERING.items():
        with committed.engine.connect() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            for statement in statements:
                conn.exec_driver_sql(statement)
            problem = verify_log(Session(bind=conn)).problem
            conn.rollback()
        found[case] = (problem.seq, problem.kind) if problem else None
    assert found == {case: (seq, kind) for case, (_, seq, kind) in TAMPERING.items()}
    with committed.sessions() as session:
        assert verify_log(session).ok  # every case was rolled back


def test_verify_command_exits_1_naming_the_seq(cli_env: Committed) -> None:
    fill(cli_env)
    as_superuser(cli_env, "DELETE FROM audit_log WHERE seq = 4")
    code, output = verify()
    assert code == EXIT_BROKEN, output
    assert "audit log BROKEN at seq 4 (missing): no entry (the next one is seq 5)" in output
    assert "entries intact before it: 3" in output


def test_verify_catches_a_trigger_disabled_by_a_superuser(cli_env: Committed) -> None:
    fill(cli_env)
    with cli_env.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.exec_driver_sql("UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 5")
        conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    code, output = verify()
    assert code == EXIT_BROKEN and "audit log BROKEN at seq 5 (edited)" in output


def test_verify_reports_progress_and_an_unreachable_database(
    cli_env: Committed, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(cli_env, 5)
    result = CliRunner().invoke(app, ["verify", "--progress", "--batch", "2"])
    assert result.exit_code == EXIT_INTACT, result.output
    assert "verified 2/5 (40%)" in result.output and "verified 5/5 (100%)" in result.output
    from tuanbox.settings import get_settings

    monkeypatch.setenv("TUANBOX_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["verify"])
    assert result.exit_code == 2
    assert "audit log NOT CHECKED: database error: OperationalError" in result.output
