"""Tests of the InfluxDB client against the real server (and its test transport for 2.x auth)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import httpx
import pytest

from telemetry.errors import (
    DatabaseNotFoundError,
    InfluxAuthError,
    InfluxQueryError,
    InfluxUnavailableError,
    InfluxWriteError,
)
from telemetry.influx import InfluxClient, quote_ident, quote_literal
from telemetry.schema import Point, cold_chain_point, to_ns
from telemetry.settings import TelemetrySettings

AT = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


def test_ping_reports_the_server_version(influx: InfluxClient) -> None:
    assert influx.ping().startswith(("1.", "2."))


def test_points_round_trip_with_escaped_names(influx: InfluxClient) -> None:
    tricky = 'L 1,a=b "q"'
    influx.write(
        [
            cold_chain_point(locker=tricky, compartment="0-1", zone="chilled", sensor="s1",
                             celsius=3.25, humidity=55, at=AT),
            Point("odd meas", {"k": "v"}, {"text": 'he said "hi" \\o/'}, AT),
        ],
        precision="ms",
    )  # fmt: skip
    series = influx.query(
        f"SELECT celsius, humidity, locker FROM cold_chain WHERE locker = {quote_literal(tricky)}"  # noqa: S608 - quoted literal
    )
    assert len(series) == 1
    (row,) = series[0].rows()
    assert row == {"time": to_ns(AT), "celsius": 3.25, "humidity": 55.0, "locker": tricky}
    (odd,) = influx.query(f"SELECT text FROM {quote_ident('odd meas')}")  # noqa: S608
    assert odd.rows()[0]["text"] == 'he said "hi" \\o/'


def test_write_errors_are_translated(influx: InfluxClient) -> None:
    with pytest.raises(DatabaseNotFoundError) as missing:
        influx.write_lines("m f=1 1\n", database=influx.database + "_missing")
    assert missing.value.code == "INFLUX_DB_NOT_FOUND"
    with pytest.raises(InfluxWriteError) as bad:
        influx.write_lines("m f= 1\n")
    assert bad.value.code == "INFLUX_WRITE_REJECTED"
    influx.write_lines("m f=1.5 1\n")
    with pytest.raises(InfluxWriteError, match="conflict"):
        influx.write_lines('m f="text" 2\n')


def test_query_errors_are_translated(influx: InfluxClient) -> None:
    with pytest.raises(InfluxQueryError) as parse:
        influx.query("SELEC nothing")
    assert parse.value.code == "INFLUX_QUERY"
    with pytest.raises(DatabaseNotFoundError):
        influx.query("SELECT * FROM m", database=influx.database + "_missing")
    assert influx.query("SELECT * FROM never_written") == []


def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The socket is closed again, so nothing listens on the port.
    with (
        InfluxClient(f"http://127.0.0.1:{port}", database="x", timeout_s=1) as client,
        pytest.raises(InfluxUnavailableError) as info,
    ):
        client.ping()
    assert info.value.code == "INFLUX_UNAVAILABLE"


def test_retention_policies_are_idempotent(influx: InfluxClient) -> None:
    influx.create_retention_policy("raw", "30d", default=True)
    influx.create_retention_policy("raw", "7d", default=True)  # alters, does not fail
    influx.create_retention_policy("rollup_5m", "730d")
    policies = {p["name"]: p for p in influx.retention_policies()}
    assert policies["raw"]["duration"] == "168h0m0s"
    assert policies["raw"]["default"] is True
    assert policies["rollup_5m"]["duration"] == "17520h0m0s"


def test_continuous_queries_are_replaced_not_duplicated(influx: InfluxClient) -> None:
    db = influx.database
    select = (
        f'SELECT mean(celsius) AS celsius INTO {quote_ident(db)}."autogen"."cq_out" '  # noqa: S608
        "FROM cold_chain GROUP BY time(5m), *"
    )
    influx.create_continuous_query("cq_test", select)
    influx.create_continuous_query("cq_test", select, resample_every="5m", resample_for="15m")
    cqs = influx.continuous_queries()
    assert list(cqs) == ["cq_test"]
    assert "RESAMPLE EVERY 5m FOR 15m" in cqs["cq_test"]
    influx.drop_continuous_query("cq_test")
    assert influx.continuous_queries() == {}


def test_token_auth_goes_in_the_header_for_2x() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers.get("Authorization") != "Token s3cret":
            return httpx.Response(401, json={"error": "unauthorized access"})
        return httpx.Response(204)

    settings = TelemetrySettings(_env_file=None, influx_token="s3cret", influx_database="b")
    with InfluxClient.from_settings(settings, transport=httpx.MockTransport(handler)) as client:
        client.write_lines("m f=1 1\n", retention_policy="autogen")
    assert seen[0].url.params["db"] == "b"
    assert seen[0].url.params["rp"] == "autogen"
    wrong = InfluxClient(
        "http://x", database="b", token="wrong", transport=httpx.MockTransport(handler)
    )
    with wrong as client, pytest.raises(InfluxAuthError):
        client.write_lines("m f=1 1\n")


def test_identifiers_and_literals_cannot_inject() -> None:
    assert quote_ident('a"; DROP DATABASE x') == '"a\\"; DROP DATABASE x"'
    assert quote_literal("x' OR 1=1 --") == "'x\\' OR 1=1 --'"
    with pytest.raises(InfluxQueryError):
        quote_ident("")
