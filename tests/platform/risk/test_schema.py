"""Migration 0017 matches the models, on PostgreSQL and SQLite, up and down."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.factories import make_order, make_user
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.db.migrate import alembic_config, upgrade
from tuanbox.models import load_all_models
from tuanbox.risk import services
from tuanbox.risk.models import RiskReview
from tuanbox.risk.rules import Event

RISK_TABLES = {"risk_signals", "risk_reviews", "risk_holds"}


def _ours(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    table = name if type_ == "table" else parent_names.get("table_name")
    return table in RISK_TABLES


def _our_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in RISK_TABLES


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "include_object": _our_object}
        )
        return list(compare_metadata(context, load_all_models()))


def test_risk_tables_have_no_drift_on_postgresql(engine: Engine) -> None:
    assert _drift(engine) == []


def test_sqlite_migrates_up_and_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'risk.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        assert _drift(engine) == []
        with engine.begin() as conn:
            check = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'orders'")
            ).scalar_one()
            assert "'review'" in check and "risk_hold" in check
            index = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'uq_risk_reviews_open_subject'")
            ).scalar_one()
            assert "WHERE status = 'open'" in index
        engine.dispose()
        command.downgrade(alembic_config(url), "0016_audit_chain")
        with engine.begin() as conn:
            tables = set(
                conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")
                ).scalars()
            )
            assert not tables & RISK_TABLES
            orders = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'orders'")
            ).scalar_one()
            assert "risk_hold" not in orders and "'review'" not in orders
        engine.dispose()
        upgrade(url)
    finally:
        engine.dispose()


def test_screening_works_on_sqlite(tmp_path: Path) -> None:
    """The zero-setup database: windowed counts, one open review per subject, deduplication."""
    url = f"sqlite:///{tmp_path / 'screen.sqlite3'}"
    upgrade(url)
    settings = make_settings(
        database_url=url, risk_rules={"orders_per_device": {"threshold": 1, "score": 50}}
    )
    engine = make_engine(url)
    factory = make_session_factory(engine, settings)
    where = {"ip": "10.0.0.1", "device_id": "ios-sqlite-0001"}
    try:
        with factory() as session:
            user = make_user(session)
            screening = services.before_order(
                session, settings, event=Event.ORDER, user_id=user.id, **where
            )
            order = make_order(session, user=user)
            services.after_order(session, screening, order)
            for _ in range(2):  # the same order's checkouts update its open review
                services.at_checkout(session, settings, order, **where)
            (review,) = session.scalars(sa.select(RiskReview)).all()
            assert (review.subject_key, review.attempts) == (f"order:{order.id}", 3)
            assert review.hits[0]["count"] == 1 and review.hits[0]["orders"] == [order.id]
            assert order.risk_hold is True
            first = services.payment_failed(session, order, provider="sim", ref="att-1")
            again = services.payment_failed(session, order, provider="sim", ref="att-1")
            assert (first, again) == ("recorded", "duplicate")
            session.commit()
    finally:
        engine.dispose()
