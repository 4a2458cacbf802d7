"""Migration 0019 (reviews, referrals) matches the models, on PostgreSQL and SQLite, up and down."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tuanbox.db.engine import make_engine
from tuanbox.db.migrate import alembic_config, upgrade
from tuanbox.models import load_all_models

TABLES = {"reviews", "referrals"}


def _ours(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    table = name if type_ == "table" else parent_names.get("table_name")
    return table in TABLES


def _our_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in TABLES


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "include_object": _our_object}
        )
        return list(compare_metadata(context, load_all_models()))


def test_review_and_referral_tables_have_no_drift_on_postgresql(engine: Engine) -> None:
    assert _drift(engine) == []


def test_sqlite_migrates_up_and_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        assert _drift(engine) == []
        with engine.begin() as conn:
            ddl = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'referrals'")
            ).scalar_one()
            assert "inviter_id <> invitee_id" in ddl
        engine.dispose()
        command.downgrade(alembic_config(url), "0018_data_protection")
        with engine.begin() as conn:
            tables = set(
                conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")
                ).scalars()
            )
            assert not tables & TABLES
        engine.dispose()
        upgrade(url)
    finally:
        engine.dispose()
