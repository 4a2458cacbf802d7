"""Migration 0013 on PostgreSQL and SQLite: codes earlier versions stored are scrubbed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from tuanbox.db.engine import make_engine
from tuanbox.db.migrate import alembic_config, upgrade

BEFORE, THIS = "0012_auth_hardening", "0013_notifications_hardening"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
notifications = sa.table(
    "notifications",
    sa.column("id", sa.Integer()),
    sa.column("channel", sa.String()),
    sa.column("template", sa.String()),
    sa.column("payload", sa.JSON()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
OLD_ROWS = {
    1: {"code": "271828", "ttl_s": 300},
    2: {"order_ids": ["o1"], "compartment": "A1", "fallback_code": "314159"},
    3: {"order_id": "o2", "cents": 500},
    4: {"barcode": "6901234567892", "note": "a key that merely ends in code"},
}


@pytest.fixture(params=["postgresql", "sqlite"])
def migrated_url(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_database: Callable[[], str]
) -> str:
    if request.param == "postgresql":
        return fresh_database()
    url = f"sqlite:///{tmp_path / 'migrate.sqlite3'}"
    upgrade(url)
    return url


def test_existing_codes_are_scrubbed_and_other_fields_kept(migrated_url: str) -> None:
    cfg = alembic_config(migrated_url)
    command.downgrade(cfg, BEFORE)
    engine = make_engine(migrated_url)
    try:
        with engine.begin() as conn:
            for row_id, payload in OLD_ROWS.items():
                conn.execute(
                    sa.insert(notifications).values(
                        id=row_id, channel="sms", template="t", payload=payload, created_at=NOW
                    )
                )
        engine.dispose()
        command.upgrade(cfg, THIS)
        with engine.connect() as conn:
            text = "\n".join(
                str(r) for r in conn.execute(sa.text("SELECT * FROM notifications")).all()
            )
            payloads = dict(
                conn.execute(
                    sa.select(notifications.c.id, notifications.c.payload).order_by(
                        notifications.c.id
                    )
                ).all()
            )
            enc = conn.execute(sa.text("SELECT secrets_enc FROM notifications")).scalars().all()
        assert "271828" not in text and "314159" not in text
        assert payloads == {
            1: {"ttl_s": 300, "redacted": ["code"]},
            2: {"order_ids": ["o1"], "compartment": "A1", "redacted": ["fallback_code"]},
            3: OLD_ROWS[3],
            4: OLD_ROWS[4],
        }
        assert enc == [None] * 4
        engine.dispose()
        command.downgrade(cfg, BEFORE)  # drops the column again
        command.upgrade(cfg, "head")
    finally:
        engine.dispose()
