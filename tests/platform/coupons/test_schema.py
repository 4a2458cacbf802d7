"""Migration 0026 matches the models on PostgreSQL and SQLite, up and down, and the coupon
flow (issue, apply with points, expire unpaid) runs on the zero-setup SQLite database too."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tests.conftest import make_settings
from tests.platform.coupons.support import template
from tests.platform.factories import make_order, make_sku, make_user
from tuanbox.audit.services import Actor
from tuanbox.coupons import checkout
from tuanbox.coupons.services import issue_one
from tuanbox.db.engine import make_engine, make_session_factory
from tuanbox.db.migrate import alembic_config, upgrade
from tuanbox.models import load_all_models
from tuanbox.orders.services import transition
from tuanbox.points import services as points

TABLES = {
    "coupon_templates",
    "coupons",
    "coupon_ledger",
    "order_discounts",
    "order_discount_lines",
    "points_accounts",
    "points_ledger",
    "order_points",
}


def _ours(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    table = name if type_ == "table" else parent_names.get("table_name")
    return table in TABLES | {"orders"}


def _our_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in TABLES | {"orders"}


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "include_object": _our_object}
        )
        return list(compare_metadata(context, load_all_models()))


def test_no_drift_on_postgresql(engine: Engine) -> None:
    assert _drift(engine) == []
    with engine.connect() as conn:
        check = conn.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conname = 'ck_orders_discount_within_total'"
            )
        ).scalar_one()
        assert "discount_cents < total_cents" in check


def test_sqlite_migrates_up_and_down_and_runs_the_flow(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'coupons.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        assert _drift(engine) == []
        settings = make_settings(database_url=url)
        factory = make_session_factory(engine, settings)
        with factory() as session:
            shopper = make_user(session)
            coupon = issue_one(session, template(session).id, shopper.id, "sqlite")
            order = make_order(session, user=shopper, sku=make_sku(session, price_cents=1200))
            points.post(session, shopper.id, "gift", "earn", 100)
            checkout.apply(session, order.id, shopper.id, [coupon.id], 100, checkout.Policy())
            assert order.discount_cents == 600
            transition(session, order, "expired", actor=Actor("system", "system"), reason="t")
            session.refresh(coupon)
            assert coupon.status == "available"
            assert points.balance_of(session, shopper.id) == (100, 0)
            session.commit()
        engine.dispose()
        command.downgrade(alembic_config(url), "0025_reports")
        with engine.begin() as conn:
            tables = set(
                conn.execute(
                    sa.text("SELECT name FROM sqlite_master WHERE type = 'table'")
                ).scalars()
            )
            assert not tables & TABLES
            orders = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = 'orders'")
            ).scalar_one()
            assert "discount_cents" not in orders
        engine.dispose()
        upgrade(url)
    finally:
        engine.dispose()
