"""Migration 0021 (flash-sale reminders) on SQLite, up and down, matching the model; the
PostgreSQL side is checked by tests/platform/orders/test_schema_matches_models.py."""

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

TABLE = "flash_sale_reminders"


def _ours(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    return (name if type_ == "table" else parent_names.get("table_name")) == TABLE


def _our_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) == TABLE


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "include_object": _our_object}
        )
        return list(compare_metadata(context, load_all_models()))


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars()
        )


def test_sqlite_migrates_up_and_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'remind.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        assert TABLE in _tables(engine) and _drift(engine) == []
        engine.dispose()
        # Whatever comes before 0021, downgrading to it drops only this table.
        script = alembic_config(url)
        from alembic.script import ScriptDirectory

        previous = ScriptDirectory.from_config(script).get_revision("0021_flash_reminders")
        assert previous is not None and isinstance(previous.down_revision, str)
        command.downgrade(script, previous.down_revision)
        assert TABLE not in _tables(engine) and "flash_sales" in _tables(engine)
        engine.dispose()
        upgrade(url)
        assert TABLE in _tables(engine)
    finally:
        engine.dispose()
