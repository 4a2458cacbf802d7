"""The demo's fulfilment step runs end to end (real agent subprocess, SQLite, real broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import make_settings
from tuanbox.db.migrate import upgrade
from tuanbox.fulfilment.demo import fulfilment_demo


def test_fulfilment_demo_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mqtt_broker: tuple[str, int]
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo writes under ./var
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        mqtt_port=mqtt_broker[1],
        pickup_signing_key_file=str(tmp_path / "key"),
    )
    upgrade(settings.database_url)
    summary = fulfilment_demo(settings)
    assert summary.endswith("allocated → ready_for_pickup → picked_up → completed")
    assert (tmp_path / "var" / "demo-pickup-qr.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "key").exists()  # generated outside production, kept for next time
