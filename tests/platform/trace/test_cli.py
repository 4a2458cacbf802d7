"""`tuanbox trace` commands through Typer: verify's table and exit codes, anchor, report."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import make_settings
from tests.traceability.conftest import Anvil
from traceability.settings import get_settings as get_trace_settings
from tuanbox.db.migrate import upgrade
from tuanbox.settings import get_settings
from tuanbox.trace import demo
from tuanbox.trace.cli import app


@pytest.fixture
def demo_db(anvil: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    upgrade(url)
    from traceability.settings import TraceSettings

    demo.run(make_settings(database_url=url), TraceSettings(rpc_url=anvil.url), out_dir=tmp_path)
    monkeypatch.setenv("TUANBOX_DATABASE_URL", url)
    monkeypatch.setenv("TRACE_RPC_URL", anvil.url)
    get_settings.cache_clear()
    get_trace_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()
    get_trace_settings.cache_clear()


def test_verify_prints_table_and_exit_codes(anvil: Anvil, demo_db: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(
        app, ["verify", str(demo_db / "trace-demo-report.json"), "--rpc", anvil.url]
    )
    assert good.exit_code == 0, good.output
    assert "SUBJECT" in good.output and re.search(r"on-chain +PASS", good.output)
    assert re.search(r"completeness +PASS +all 5 events of the lot", good.output)
    bad = runner.invoke(
        app, ["verify", str(demo_db / "trace-demo-report-tampered.json"), "--rpc", anvil.url]
    )
    assert bad.exit_code == 1
    assert "FAILED: event 4 (storing) hash: tampered event" in bad.output


def test_report_export_and_anchor(demo_db: Path) -> None:
    runner = CliRunner()
    out = demo_db / "exported.json"
    result = runner.invoke(app, ["report", demo.DEMO_GTIN, demo.DEMO_LOT, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["lot"] == demo.DEMO_LOT
    result = runner.invoke(app, ["anchor"])
    assert result.exit_code == 1  # no TRACE_SIGNER_KEY configured: refused, nothing anchored
    assert "FAILED: signer_not_configured" in result.output


def test_check_reorgs_reads_the_recorded_anchors(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from traceability.settings import ANVIL_DEV_KEY

    monkeypatch.setenv("TRACE_SIGNER_KEY", ANVIL_DEV_KEY)
    get_trace_settings.cache_clear()
    result = CliRunner().invoke(app, ["check-reorgs"])
    assert result.exit_code == 0, result.output
    assert "anchors checked: 1, reorged: 0, re-anchored: 0, failed: 0" in result.output
    monkeypatch.setenv("TRACE_RPC_URL", "http://127.0.0.1:9")  # nothing listens there
    get_trace_settings.cache_clear()
    down = CliRunner().invoke(app, ["check-reorgs"])
    assert down.exit_code == 1 and "FAILED: chain_unavailable" in down.output
