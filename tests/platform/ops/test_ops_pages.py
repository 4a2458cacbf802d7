"""The ops dashboard over HTTP: access control, fleet, locker page, charts, alerts, holds, SSE."""

from __future__ import annotations

import json
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from telemetry.schema import to_ns
from telemetry.settings import TelemetrySettings
from telemetry.stats import Reading, summarize
from tests.platform.coldchain.fx import (
    Site,
    failing_profile,
    make_site,
    run_scans,
    write_through_edge,
)
from tests.platform.factories import STAFF_PASSWORD, auth_header, make_user
from tuanbox.audit.models import AuditEntry
from tuanbox.coldchain.models import Episode, QualityHold
from tuanbox.fulfilment.models import OpsAlert
from tuanbox.ops.auth import COOKIE
from tuanbox.orders.models import Order
from tuanbox.settings import Settings


@pytest.fixture
def site(
    db_session: Session,
    settings: Settings,
    telemetry: TelemetrySettings,
    influx_url: str,
    tmp_path: Path,
    t0: datetime,
    app: FastAPI,
) -> Site:
    """A locker whose chilled 0-1 failed (excursion raised, order held); app reads this Influx."""
    app.state.telemetry_settings = telemetry
    s = make_site(db_session, settings, deposited_at=t0)
    write_through_edge(tmp_path, influx_url, telemetry.influx_database, s.locker_id, t0, 240)
    run_scans(db_session, telemetry, t0, range(10, 241, 10))
    return s


@pytest.fixture
def ops_headers(db_session: Session, settings: Settings) -> dict[str, str]:
    return auth_header(settings, make_user(db_session, "ops"))


def test_pages_need_the_ops_role(
    client: TestClient, db_session: Session, settings: Settings
) -> None:
    page = client.get("/ops", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/ops/login"
    assert client.get("/ops/stream").status_code == 401
    shopper = auth_header(settings, make_user(db_session, "shopper"))
    assert client.get("/ops", headers=shopper, follow_redirects=False).status_code == 303
    client.cookies.set(COOKIE, shopper["Authorization"][7:], path="/ops")
    refused = client.post("/ops/alerts/1/acknowledge", json={})
    assert refused.status_code == 403
    assert refused.json()["code"] == "FORBIDDEN"
    ops = auth_header(settings, make_user(db_session, "ops"))
    cross = client.post("/ops/alerts/1/acknowledge", json={},
                        headers={**ops, "Origin": "https://evil.example"})  # fmt: skip
    assert cross.status_code == 403
    same = client.post("/ops/alerts/999999/acknowledge", json={},
                       headers={**ops, "Origin": "http://testserver"})  # fmt: skip
    assert same.status_code == 404  # past the origin check, and no such alert


def test_password_login_sets_a_strict_httponly_cookie(
    client: TestClient, db_session: Session, app: FastAPI, telemetry: TelemetrySettings
) -> None:
    app.state.telemetry_settings = telemetry
    ops = make_user(db_session, "ops")
    wrong = client.post("/ops/login", data={"login": ops.login, "password": "nope"})
    assert "Wrong login or password" in wrong.text
    ok = client.post("/ops/login", data={"login": ops.login, "password": STAFF_PASSWORD},
                     follow_redirects=False)  # fmt: skip
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "Path=/ops", "SameSite=strict"):
        assert attribute.lower() in cookie.lower()
    assert client.get("/ops").status_code == 200


def test_fleet_and_locker_pages_show_the_excursion(
    client: TestClient, site: Site, ops_headers: dict[str, str]
) -> None:
    fleet = client.get("/ops", headers=ops_headers)
    assert fleet.status_code == 200
    assert site.locker_id in fleet.text
    assert "Lobby of building 7" in fleet.text
    # The latest readings of the cold zones, from InfluxDB.
    assert f'data-temp="{site.locker_id}/0-1">3.0<' in fleet.text
    assert f'data-temp="{site.locker_id}/0-3">-19.5<' in fleet.text

    page = client.get(f"/ops/lockers/{site.locker_id}?hours=6", headers=ops_headers)
    assert page.status_code == 200
    assert 'data-compartment="0-1"' in page.text
    assert f"/ops/lockers/{site.locker_id}/charts/0-1.svg?hours=6" in page.text
    assert "duration" in page.text  # the episode table
    assert client.get("/ops/lockers/nope", headers=ops_headers).status_code == 404


def test_chart_is_an_svg_with_the_zone_limits(
    client: TestClient, site: Site, ops_headers: dict[str, str]
) -> None:
    svg = client.get(f"/ops/lockers/{site.locker_id}/charts/0-1.svg?hours=6",
                     headers=ops_headers)  # fmt: skip
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.startswith("<svg")
    assert 'class="mean"' in svg.text
    for label in ("target ≤ 4", "limit 8 / 15 min", "hard 12"):
        assert label in svg.text
    frozen = client.get(f"/ops/lockers/{site.locker_id}/charts/0-3.svg", headers=ops_headers)
    assert "limit -15 / 15 min" in frozen.text
    missing = client.get(f"/ops/lockers/{site.locker_id}/charts/9-9.svg", headers=ops_headers)
    assert missing.status_code == 404


def test_alerts_acknowledge_resolve_and_release_are_audited(
    client: TestClient, site: Site, ops_headers: dict[str, str], db_session: Session, t0: datetime
) -> None:
    (episode,) = db_session.scalars(select(Episode)).all()
    page = client.get("/ops/alerts", headers=ops_headers)
    assert f'data-alert="{episode.alert_id}"' in page.text
    assert f"/ops/episodes/{episode.id}/evidence.svg" in page.text
    # The held order's stay so far, for the decision: from the deposit (t0) to now.
    stay = summarize(
        [Reading(to_ns(t0) + m * 60 * 10**9, round(failing_profile(m * 60.0), 3))
         for m in range(240)], low=0.0, high=4.0)  # fmt: skip
    assert stay is not None
    assert f"<b>MKT {stay.mkt_c:.1f} °C</b>" in page.text
    assert f"max {stay.max_c:.1f}" in page.text
    evidence = client.get(f"/ops/episodes/{episode.id}/evidence.svg", headers=ops_headers)
    assert 'class="mean"' in evidence.text

    ack = client.post(f"/ops/alerts/{episode.alert_id}/acknowledge", json={"note": "on it"},
                      headers=ops_headers)  # fmt: skip
    assert ack.json() == {"id": episode.alert_id, "status": "acknowledged"}
    again = client.post(f"/ops/alerts/{episode.alert_id}/acknowledge", json={},
                        headers=ops_headers)  # fmt: skip
    assert again.status_code == 409
    empty = client.post(f"/ops/alerts/{episode.alert_id}/resolve", json={"note": ""},
                        headers=ops_headers)  # fmt: skip
    assert empty.status_code == 422

    (hold,) = db_session.scalars(select(QualityHold)).all()
    early = client.post(f"/ops/alerts/{episode.alert_id}/resolve", json={"note": "done"},
                        headers=ops_headers)  # fmt: skip
    assert early.status_code == 409
    assert early.json()["code"] == "HOLDS_PENDING"
    released = client.post(f"/ops/holds/{hold.id}/release", json={"note": "probe ok, 4 °C"},
                           headers=ops_headers)  # fmt: skip
    assert released.json()["status"] == "released"
    order = db_session.get(Order, site.failing.id)
    assert order is not None
    assert order.status == "ready_for_pickup"
    resolved = client.post(f"/ops/alerts/{episode.alert_id}/resolve",
                           json={"note": "compressor replaced"}, headers=ops_headers)  # fmt: skip
    assert resolved.json()["status"] == "resolved"
    alert = db_session.get(OpsAlert, episode.alert_id)
    assert alert is not None
    assert alert.note == "compressor replaced"
    actions = db_session.scalars(
        select(AuditEntry.action).where(AuditEntry.action.in_(
            ["alert.acknowledge", "alert.resolve", "quality_hold.release"]))
        .order_by(AuditEntry.id)
    ).all()  # fmt: skip
    assert actions == ["alert.acknowledge", "quality_hold.release", "alert.resolve"]
    assert "No open alerts" in client.get("/ops/alerts/fragment", headers=ops_headers).text


def test_stream_sends_a_snapshot(client: TestClient, ops_headers: dict[str, str]) -> None:
    with client.stream("GET", "/ops/stream?max_events=1", headers=ops_headers) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    assert body.startswith("retry: 3000")
    (payload,) = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    snap = json.loads(payload)
    assert set(snap) >= {"open_alerts", "alerts_digest", "lockers", "temps"}


def test_pages_survive_influxdb_being_down(
    client: TestClient, app: FastAPI, ops_headers: dict[str, str], db_session: Session,
    settings: Settings,
) -> None:  # fmt: skip
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app.state.telemetry_settings = TelemetrySettings(
        _env_file=None, influx_url=f"http://127.0.0.1:{port}", influx_timeout_s=1
    )
    page = client.get("/ops", headers=ops_headers)
    assert page.status_code == 200
    assert "telemetry unavailable (INFLUX_UNAVAILABLE)" in page.text


def test_stream_ends_when_the_sign_in_lapses(
    client: TestClient, ops_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream re-checks the token before every push; once it no longer admits the user
    (expired), the server closes the stream. Simulated deterministically: the check admits
    the connection and the first push, then no more."""
    from tuanbox.ops import auth

    real = auth.principal_from
    calls = []

    def lapsing(request: Any, settings: Settings) -> Any:
        calls.append(1)
        return real(request, settings) if len(calls) <= 2 else None

    monkeypatch.setattr(auth, "principal_from", lapsing)
    with client.stream("GET", "/ops/stream?interval_s=0.2", headers=ops_headers) as response:
        assert response.status_code == 200
        body = "".join(response.iter_text())  # returns only because the server closed it
    assert body.count("event: snapshot") == 1
    assert len(calls) == 3
