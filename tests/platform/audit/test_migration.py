"""Migration 0016: rows written before the chain get one in id order; schema matches models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.conftest import PG_ADMIN_URL, _admin_engine, drop_database
from tuanbox.audit.models import AuditEntry
from tuanbox.audit.services import Actor, record
from tuanbox.audit.verify import verify_log
from tuanbox.db.engine import make_engine
from tuanbox.db.migrate import alembic_config, upgrade
from tuanbox.models import load_all_models

AUDIT_TABLES = {"audit_log", "audit_chain", "audit_anchors"}
OLD_ROWS = [
    ("2026-11-30T10:00:00", "u-1", "admin", "user.create", "user", "u-9", None, '{"role": "ops"}'),
    ("2026-11-30T09:00:00", "cli", "admin", "merchant.create", "merchant", "m-1", None, "{}"),
    ("2026-12-01T08:00:00", "u-2", "ops", "order.refund", "order", "o-1", "damaged", '{"a": 1}'),
]


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/audit.sqlite3"
        return
    name = f"tuanbox_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    drop_database(name)


def test_existing_rows_are_chained_in_id_order(database: str) -> None:
    upgrade(database, "0015_order_paths")
    engine = make_engine(database)
    with engine.begin() as conn:
        for at, *rest in OLD_ROWS:
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (at, actor_id, actor_role, action, subject_type, "
                    "subject_id, reason, details) VALUES (:at, :a, :r, :ac, :st, :si, :re, :d)"
                ),
                dict(zip(("a", "r", "ac", "st", "si", "re", "d"), rest, strict=True))
                | {"at": datetime.fromisoformat(at).replace(tzinfo=UTC)},
            )
    engine.dispose()
    upgrade(database)
    engine = make_engine(database)
    try:
        with Session(engine) as session:
            rows = session.execute(sa.select(AuditEntry.id, AuditEntry.seq).order_by(AuditEntry.id))
            assert [seq for _, seq in rows] == [1, 2, 3]  # id order, not time order
            report = verify_log(session)
            assert report.ok and report.entries == report.head_seq == 3, report.problem
            record(session, Actor("u-3", "ops"), "alert.resolve", "ops_alert", "1")
            session.commit()
            assert verify_log(session).head_seq == 4 and verify_log(session).ok
        command.downgrade(alembic_config(database), "0015_order_paths")
        assert "audit_chain" not in sa.inspect(engine).get_table_names()
        upgrade(database)
        with Session(engine) as session:
            assert verify_log(session).entries == 4  # chained again, from the same rows
    finally:
        engine.dispose()


def _ours(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    if type_ == "table":
        return name in AUDIT_TABLES
    return parent_names.get("table_name") in AUDIT_TABLES


def _our_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in AUDIT_TABLES


def test_audit_tables_have_no_drift(engine: Engine) -> None:
    metadata = load_all_models()
    with engine.connect() as conn:
        opts = {"compare_type": True, "include_name": _ours, "include_object": _our_object}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, metadata) == []
