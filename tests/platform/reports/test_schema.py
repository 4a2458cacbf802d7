"""Migration 0025 (reports) matches the models, on PostgreSQL and SQLite, up and down."""

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

TABLES = {
    "report_daily",
    "report_daily_stations",
    "report_daily_buyers",
    "report_monthly_stations",
    "report_buyer_first",
    "report_campaign_views",
    "report_view_batches",
    "report_watermarks",
}
INDEXES = {"ix_orders_updated_at", "ix_gb_groups_updated_at", "ix_gb_groups_created_at"}


def _ours(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ in ("schema", "table"):
        return True
    if type_ == "index":
        return name in INDEXES or parent_names.get("table_name") in TABLES
    return parent_names.get("table_name") in TABLES


def _our_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    if type_ == "index":
        return name in INDEXES or getattr(getattr(obj, "table", None), "name", None) in TABLES
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in TABLES


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "include_object": _our_object}
        )
        return list(compare_metadata(context, load_all_models()))


def test_report_tables_and_indexes_have_no_drift_on_postgresql(engine: Engine) -> None:
    assert _drift(engine) == []


def test_sqlite_migrates_up_and_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        assert _drift(engine) == []
        engine.dispose()
        command.downgrade(alembic_config(url), "0024_console_orders")
        with engine.begin() as conn:
            names = set(conn.execute(sa.text("SELECT name FROM sqlite_master")).scalars())
        assert not names & (TABLES | INDEXES)
        assert "orders" in names
    finally:
        engine.dispose()
