"""The trace demo step on a zero-setup SQLite database and our own anvil."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings
from tests.traceability.conftest import Anvil
from traceability.cli import run_verify
from traceability.settings import TraceSettings
from tuanbox.db.migrate import upgrade
from tuanbox.trace import demo


def test_demo_anchors_the_batch_and_verifies(anvil: Anvil, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/demo.sqlite3"
    upgrade(url)
    settings = make_settings(database_url=url)
    trace = TraceSettings(rpc_url=anvil.url, chain_id=31337)  # no key: dev chain defaults
    summary = demo.run(settings, trace, out_dir=tmp_path)
    assert "5 events anchored" in summary
    assert f"/01/{demo.DEMO_GTIN}/10/{demo.DEMO_LOT}" in summary
    code, _ = run_verify(tmp_path / "trace-demo-report.json", anvil.url, offline=False)
    assert code == 0
    code, text = run_verify(tmp_path / "trace-demo-report-tampered.json", anvil.url, offline=False)
    assert code == 1 and "tampered event" in text
    # A second run finds the same events and the same anchors: nothing is duplicated.
    again = demo.run(settings, trace, out_dir=tmp_path)
    assert "5 events anchored" in again
