"""The migrated schema is exactly what the models declare (no drift between Alembic and ORM)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from tuanbox.models import load_all_models

COMMERCE_TABLES = {
    "users", "otp_codes", "refresh_tokens", "addresses", "merchants", "products", "skus",
    "lots", "product_images", "orders", "order_transitions", "payment_intents", "payments",
    "refunds", "simpay_ledger", "idempotency_keys", "notifications", "return_requests",
    "gb_campaigns", "gb_groups", "gb_members", "gb_user_quotas", "flash_sales",
    "flash_reservations", "flash_user_totals", "flash_sale_reminders",
}  # fmt: skip


def _ours(name: str | None, type_: str, parent_names: dict[str, str | None]) -> bool:
    if type_ == "schema":
        return True
    if type_ == "table":
        return name in COMMERCE_TABLES
    return parent_names.get("table_name") in COMMERCE_TABLES


def _our_object(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return getattr(table, "name", name) in COMMERCE_TABLES


def test_commerce_tables_have_no_drift(engine: Engine) -> None:
    metadata = load_all_models()
    assert set(metadata.tables) >= COMMERCE_TABLES
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_name": _ours, "include_object": _our_object}
        )
        assert compare_metadata(context, metadata) == []
