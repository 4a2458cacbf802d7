"""Migrations form one line of history and run on PostgreSQL and SQLite; tests roll back."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor, record
from tuanbox.db.engine import make_engine
from tuanbox.db.migrate import heads, upgrade
from tuanbox.models import load_all_models


def test_single_migration_head() -> None:
    assert len(heads()) == 1, f"several Alembic heads, merge them: {heads()}"


def test_migrations_match_the_models(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(load_all_models().tables) <= tables


def test_migrations_run_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path}/t.sqlite3"
    upgrade(url)
    eng = make_engine(url)
    assert "audit_log" in inspect(eng).get_table_names()
    eng.dispose()


def test_constraint_names_follow_the_convention(engine: Engine) -> None:
    pk = inspect(engine).get_pk_constraint("audit_log")
    assert pk["name"] == "pk_audit_log"


def test_audit_entry_written_in_the_callers_transaction(db_session: Session) -> None:
    record(db_session, Actor("u1", "ops"), "locker.open", "compartment", "c9", reason="stuck bag")
    db_session.commit()  # a SAVEPOINT inside the test's outer transaction
    entry = db_session.scalars(sa.select(AuditEntry).where(AuditEntry.subject_id == "c9")).one()
    assert entry.actor_role == "ops" and entry.reason == "stuck bag"


def test_previous_test_was_rolled_back(db_session: Session) -> None:
    count = db_session.scalar(
        sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.subject_id == "c9")
    )
    assert count == 0
