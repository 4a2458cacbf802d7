"""The demo steps run on the zero-setup SQLite default (plus real Redis) and say what happened."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings
from tuanbox.db.migrate import upgrade
from tuanbox.flashsale.demo import flash_sale
from tuanbox.groupbuy.demo import tiered_group


def test_demo_steps_on_sqlite(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}", redis_url=redis_url
    )
    upgrade(settings.database_url)
    group = tiered_group(settings)
    assert "¥27.00, ¥27.00, ¥27.00, ¥27.00, ¥24.00" in group
    assert "group closed confirmed at ¥24.00 each; orders confirmed" in group
    assert "4 members refunded the difference" in group and "{'succeeded': 4}" in group
    flash = flash_sale(settings)
    assert "3 won, 5 sold out; DB sold 3 (remaining 0), Redis stock 0 with 3 reservations" in flash
