"""The demo step: a provoked excursion, and the printed dashboard URL really shows it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from telemetry.influx import InfluxClient
from telemetry.settings import TelemetrySettings
from tests.conftest import make_settings
from tuanbox.api.app import create_app
from tuanbox.coldchain.demo import cold_chain
from tuanbox.db.engine import make_engine


def test_demo_step_provokes_an_excursion_shown_on_the_dashboard(
    fresh_database: Callable[[], str],
    telemetry: TelemetrySettings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # The step reads TELEMETRY_* like the real `tuanbox demo`; point it at this test's database.
    monkeypatch.setenv("TELEMETRY_INFLUX_URL", telemetry.influx_url)
    monkeypatch.setenv("TELEMETRY_INFLUX_DATABASE", telemetry.influx_database)
    monkeypatch.chdir(tmp_path)  # the chart lands under ./var/demo
    settings = make_settings(database_url=fresh_database())
    summary = cold_chain(settings)
    assert "on quality hold" in summary
    match = re.search(r"(http://\S+/ops/login\?token=\S+) and \S+/ops/lockers/(\S+)", summary)
    assert match is not None, summary
    login_url, locker_id = match.groups()
    assert "rendered by headless Chromium" in summary
    png = (tmp_path / "var" / "demo" / f"{locker_id}-0-1.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    chart = (tmp_path / "var" / "demo" / f"{locker_id}-0-1.svg").read_text()
    assert chart.startswith("<svg")
    assert 'class="mean"' in chart

    with InfluxClient.from_settings(telemetry) as influx:
        assert "cq_cold_chain_5m" in influx.continuous_queries()
    engine = make_engine(settings.database_url)
    app = create_app(settings, engine=engine)
    app.state.telemetry_settings = telemetry
    with TestClient(app) as client:
        url = urlsplit(login_url)
        signed_in = client.get(f"{url.path}?{url.query}", follow_redirects=False)
        assert signed_in.status_code == 303
        page = client.get(f"/ops/lockers/{locker_id}")
        assert page.status_code == 200
        assert "EXCURSION" in page.text
        alerts = client.get("/ops/alerts").text
        assert "cold_chain_excursion" in alerts
        assert "1 order(s) on quality hold" in alerts
    engine.dispose()
