"""A small InfluxDB client over httpx: line-protocol writes and InfluxQL queries (1.x v1 API).

The same calls work against InfluxDB 2.x through its v1 compatibility API (`/write`, `/query`)
when ``token`` is given (sent as ``Authorization: Token …``) and a DBRP mapping exists for the
database; 2.x refuses the admin statements (CREATE DATABASE, retention policies, continuous
queries) because buckets and tasks replace them — see telemetry/retention.py.

Every HTTP or transport failure is translated here into a :mod:`telemetry.errors` subclass, so
callers never see httpx exceptions. Nothing connects at import time; tests may pass an
``httpx.BaseTransport`` (e.g. ``httpx.MockTransport``) in place of the network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from telemetry.errors import (
    DatabaseNotFoundError,
    InfluxAuthError,
    InfluxQueryError,
    InfluxUnavailableError,
    InfluxWriteError,
    TelemetryError,
)
from telemetry.schema import Point, Precision, to_lines
from telemetry.settings import TelemetrySettings


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes, so user-supplied names cannot inject."""
    if not name or "\n" in name:
        raise InfluxQueryError(f"invalid identifier {name!r}", code="BAD_IDENTIFIER")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal in single quotes (tag values in WHERE clauses)."""
    if "\n" in value:
        raise InfluxQueryError("string literal contains a newline", code="BAD_LITERAL")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass(frozen=True)
class Series:
    """One series of a query answer: measurement name, group-by tags, columns and rows."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


class InfluxClient:
    """Synchronous client; one per process or per task run, closed when done."""

    def __init__(
        self,
        url: str,
        *,
        database: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.database = database
        headers = {"Accept": "application/json"}
        auth: httpx.Auth | None = None
        if token:
            headers["Authorization"] = f"Token {token}"
        elif username:
            auth = httpx.BasicAuth(username, password or "")
        self._http = httpx.Client(
            base_url=url.rstrip("/"),
            headers=headers,
            auth=auth,
            timeout=timeout_s,
            transport=transport,
        )

    @classmethod
    def from_settings(
        cls, settings: TelemetrySettings, transport: httpx.BaseTransport | None = None
    ) -> InfluxClient:
        return cls(
            settings.influx_url,
            database=settings.influx_database,
            username=settings.influx_username,
            password=settings.influx_password.get_secret_value()
            if settings.influx_password
            else None,
            token=settings.influx_token.get_secret_value() if settings.influx_token else None,
            timeout_s=settings.influx_timeout_s,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise InfluxUnavailableError(f"InfluxDB timed out on {path}: {exc}") from exc
        except httpx.TransportError as exc:
            raise InfluxUnavailableError(f"InfluxDB unreachable on {path}: {exc}") from exc
        if response.status_code in (401, 403):
            raise InfluxAuthError(f"InfluxDB refused the credentials ({response.status_code})")
        if response.status_code >= 500:
            raise InfluxUnavailableError(
                f"InfluxDB answered {response.status_code} on {path}: {_error_text(response)}"
            )
        return response

    def ping(self) -> str:
        """The server version (`X-Influxdb-Version`); raises InfluxUnavailableError if down."""
        response = self._request("GET", "/ping")
        if response.status_code != 204:
            raise InfluxUnavailableError(f"/ping answered {response.status_code}")
        return response.headers.get("X-Influxdb-Version", "unknown")

    # --- writes ------------------------------------------------------------------------

    def write(
        self,
        points: Sequence[Point],
        *,
        precision: Precision = "s",
        database: str | None = None,
        retention_policy: str | None = None,
    ) -> None:
        """Write points in one request; precision says how timestamps are truncated."""
        if points:
            self.write_lines(
                to_lines(points, precision),
                precision=precision,
                database=database,
                retention_policy=retention_policy,
            )

    def write_lines(
        self,
        body: str,
        *,
        precision: Precision = "s",
        database: str | None = None,
        retention_policy: str | None = None,
    ) -> None:
        """Write an already encoded line-protocol body (e.g. a batch from the edge outbox)."""
        db = database or self.database
        params = {"db": db, "precision": precision}
        if retention_policy:
            params["rp"] = retention_policy
        response = self._request("POST", "/write", params=params, content=body.encode())
        if response.status_code == 204:
            return
        text = _error_text(response)
        if response.status_code == 404 or "database not found" in text:
            raise DatabaseNotFoundError(f"InfluxDB has no database {db!r}: {text}")
        if response.status_code == 413:
            raise InfluxWriteError(f"write batch too large: {text}", code="INFLUX_WRITE_TOO_LARGE")
        raise InfluxWriteError(f"InfluxDB refused the write ({response.status_code}): {text}")

    # --- queries -----------------------------------------------------------------------

    def query(
        self, q: str, *, database: str | None = None, epoch: Precision = "ns"
    ) -> list[Series]:
        """Run one statement and return its series (empty list when nothing matched)."""
        results = self.query_statements(q, database=database, epoch=epoch)
        return results[0] if results else []

    def query_statements(
        self, q: str, *, database: str | None = None, epoch: Precision = "ns"
    ) -> list[list[Series]]:
        """Run one or more `;`-separated statements; one list of series per statement."""
        data = {"q": q, "db": database or self.database, "epoch": epoch}
        response = self._request("POST", "/query", data=data)
        if response.status_code != 200:
            raise InfluxQueryError(
                f"query refused ({response.status_code}): {_error_text(response)}"
            )
        payload = response.json()
        if "error" in payload:
            raise InfluxQueryError(f"query failed: {payload['error']}")
        out: list[list[Series]] = []
        for result in payload.get("results", []):
            if "error" in result:
                message = str(result["error"])
                if message.startswith("database not found"):
                    raise DatabaseNotFoundError(message)
                raise InfluxQueryError(f"statement {result.get('statement_id')}: {message}")
            out.append([_series(s) for s in result.get("series", [])])
        return out

    # --- administration (1.x; 2.x uses buckets and tasks instead) ------------------------

    def create_database(self, name: str | None = None) -> None:
        """Idempotent on InfluxDB (CREATE DATABASE of an existing one succeeds)."""
        self.query(f"CREATE DATABASE {quote_ident(name or self.database)}")

    def drop_database(self, name: str | None = None) -> None:
        self.query(f"DROP DATABASE {quote_ident(name or self.database)}")

    def databases(self) -> list[str]:
        return [row[0] for s in self.query("SHOW DATABASES") for row in s.values]

    def create_retention_policy(
        self,
        name: str,
        duration: str,
        *,
        default: bool = False,
        shard_duration: str | None = None,
        database: str | None = None,
    ) -> None:
        """Create the policy, or alter it in place when it already exists (idempotent)."""
        db = database or self.database
        existing = {row["name"] for row in self.retention_policies(db)}
        verb = "ALTER" if name in existing else "CREATE"
        statement = (
            f"{verb} RETENTION POLICY {quote_ident(name)} ON {quote_ident(db)} "
            f"DURATION {_duration(duration)} REPLICATION 1"
        )
        if shard_duration:
            statement += f" SHARD DURATION {_duration(shard_duration)}"
        if default:
            statement += " DEFAULT"
        self.query(statement, database=db)

    def retention_policies(self, database: str | None = None) -> list[dict[str, Any]]:
        db = database or self.database
        series = self.query(f"SHOW RETENTION POLICIES ON {quote_ident(db)}", database=db)
        return [row for s in series for row in s.rows()]

    def create_continuous_query(
        self,
        name: str,
        select: str,
        *,
        resample_every: str | None = None,
        resample_for: str | None = None,
        database: str | None = None,
    ) -> None:
        """(Re)create a continuous query; ``select`` is the full SELECT … INTO … statement."""
        db = database or self.database
        self.drop_continuous_query(name, database=db, missing_ok=True)
        resample = ""
        if resample_every or resample_for:
            resample = " RESAMPLE"
            if resample_every:
                resample += f" EVERY {_duration(resample_every)}"
            if resample_for:
                resample += f" FOR {_duration(resample_for)}"
        self.query(
            f"CREATE CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(db)}{resample} "
            f"BEGIN {select} END",
            database=db,
        )

    def drop_continuous_query(
        self, name: str, *, database: str | None = None, missing_ok: bool = False
    ) -> None:
        db = database or self.database
        if missing_ok and name not in self.continuous_queries(db):
            return
        self.query(f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(db)}", database=db)

    def continuous_queries(self, database: str | None = None) -> dict[str, str]:
        """Name → definition of the continuous queries on one database."""
        db = database or self.database
        return {
            row[0]: row[1]
            for s in self.query("SHOW CONTINUOUS QUERIES", database=db)
            if s.name == db
            for row in s.values
        }


def _series(raw: Mapping[str, Any]) -> Series:
    return Series(
        name=str(raw.get("name", "")),
        columns=list(raw.get("columns", [])),
        values=[list(v) for v in raw.get("values", [])],
        tags=dict(raw.get("tags", {}) or {}),
    )


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(payload, dict) and "error" in payload:
        return str(payload["error"])
    return response.text[:300]


_DURATION_UNITS = ("ns", "u", "µ", "ms", "s", "m", "h", "d", "w")


def _duration(value: str) -> str:
    """Validate an InfluxQL duration literal (``30d``, ``5m``, ``INF``) before splicing it."""
    if value.upper() == "INF":
        return "INF"
    number = value.rstrip("".join(_DURATION_UNITS))
    unit = value[len(number) :]
    if not number.isdigit() or unit not in _DURATION_UNITS:
        raise TelemetryError(f"invalid duration {value!r}", code="BAD_DURATION")
    return value


def ensure_database(client: InfluxClient, names: Iterable[str] = ()) -> None:
    """Create the client's database (and any others named); safe to call on every start."""
    client.create_database()
    for name in names:
        client.create_database(name)
