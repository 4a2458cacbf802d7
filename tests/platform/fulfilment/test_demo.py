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
    path = "paid → confirmed → allocated → ready_for_pickup → picked_up → completed"
    for _ in range(2):  # re-runnable on the same database
        summary = fulfilment_demo(settings)
        regular, flash = summary.split("; ")
        assert regular.startswith("regular ") and regular.endswith(path), summary
        assert flash.startswith("flash-sale ") and flash.endswith(path), summary
    for kind in ("regular", "flash-sale"):
        qr = tmp_path / "var" / f"demo-pickup-qr-{kind}.png"
        assert qr.read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "key").exists()  # generated outside production, kept for next time
