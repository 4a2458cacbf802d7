"""InfluxDB sinks (1.x ``/write``, 2.x ``/api/v2/write``) on one keep-alive stdlib HTTP connection.

The standard library's ``http.client`` rather than httpx: the agent runs on a 512 MB Pi next
to other processes, and importing httpx there also loads its CLI's dependencies (rich,
pygments, click), about 8 MB of resident memory for one POST every few seconds.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from edge.agent.errors import ConfigError, TelemetryWriteError
from edge.agent.ports import TelemetrySink
from edge.agent.schema import PRECISION
from edge.agent.settings import EdgeSettings


class HttpConnection:
    """One persistent connection to ``url``'s host, reopened after any failure."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"InfluxDB URL must be http(s)://host[:port][/path], got {url!r}")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    self.host,
                    self.port,
                    timeout=self.timeout_s,
                    context=ssl.create_default_context(),
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout_s
                )
        return self._conn

    def post(
        self,
        path: str,
        params: dict[str, str],
        body: bytes,
        headers: dict[str, str],
        meanwhile: Callable[[], None] | None = None,
    ) -> tuple[int, str]:
        """(status, body text); TelemetryWriteError when no answer came. ``meanwhile`` runs
        once, between sending the request and reading the answer."""
        target = f"{self.prefix}{path}?{urlencode(params)}"
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.request("POST", target, body=body, headers=headers)
                if meanwhile is not None:
                    meanwhile()
                    meanwhile = None
                response = conn.getresponse()
                text = response.read().decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # A kept-alive connection the server had closed: once more on a fresh one
                # (a repeated write is harmless, every point overwrites itself).
                stale = isinstance(
                    exc, http.client.RemoteDisconnected | BrokenPipeError | ConnectionResetError
                )
                if attempt == 1 and stale:
                    continue
                raise TelemetryWriteError(f"InfluxDB unreachable: {exc}") from exc
            if response.will_close:
                self.close()
            return response.status, text
        raise AssertionError("unreachable")  # pragma: no cover


class InfluxV1Sink(TelemetrySink):
    """InfluxDB 1.x ``POST /write?db=...&precision=ms``."""

    def __init__(
        self, url: str, db: str, *, timeout_s: float = 5.0, create_db: bool = True
    ) -> None:
        self.db, self.create_db = db, create_db
        self._http = HttpConnection(url, timeout_s)

    def close(self) -> None:
        self._http.close()

    def write(self, lines: list[str]) -> None:
        self._write(lines, None)

    def write_overlapped(self, lines: list[str], meanwhile: Callable[[], None]) -> None:
        self._write(lines, meanwhile)

    def _write(self, lines: list[str], meanwhile: Callable[[], None] | None) -> None:
        params = {"db": self.db, "precision": PRECISION}
        body = "\n".join(lines).encode()
        status, text = self._http.post("/write", params, body, {}, meanwhile)
        if status == 404 and self.create_db and "database not found" in text:
            self._http.post("/query", {"q": f'CREATE DATABASE "{self.db}"'}, b"", {})
            status, text = self._http.post("/write", params, body, {})
        _check(status, text)


class InfluxV2Sink(TelemetrySink):
    """InfluxDB 2.x ``POST /api/v2/write?org=&bucket=&precision=ms`` with a token."""

    def __init__(
        self, url: str, org: str, bucket: str, token: str, *, timeout_s: float = 5.0
    ) -> None:
        self.org, self.bucket = org, bucket
        self._headers = {"Authorization": f"Token {token}"}
        self._http = HttpConnection(url, timeout_s)

    def close(self) -> None:
        self._http.close()

    def write(self, lines: list[str]) -> None:
        self.write_overlapped(lines, lambda: None)

    def write_overlapped(self, lines: list[str], meanwhile: Callable[[], None]) -> None:
        params = {"org": self.org, "bucket": self.bucket, "precision": PRECISION}
        body = "\n".join(lines).encode()
        _check(*self._http.post("/api/v2/write", params, body, self._headers, meanwhile))


def _check(status: int, text: str) -> None:
    if status == 204:
        return
    # 400/422 mean the lines themselves are bad: retrying would block the buffer forever.
    retryable = status >= 500 or status in (401, 403, 404, 429)
    raise TelemetryWriteError(
        f"InfluxDB answered {status}: {text[:200]}",
        code="INFLUX_UNAVAILABLE" if retryable else "INFLUX_REJECTED",
        retryable=retryable,
    )


def make_sink(settings: EdgeSettings) -> TelemetrySink | None:
    if not settings.influx_url:
        return None
    if settings.influx_version == 1:
        return InfluxV1Sink(
            settings.influx_url,
            settings.influx_db,
            timeout_s=settings.influx_timeout_s,
            create_db=settings.influx_create_db,
        )
    if not (settings.influx_org and settings.influx_bucket and settings.influx_token):
        raise ConfigError("InfluxDB 2.x needs EDGE_INFLUX_ORG, _BUCKET and _TOKEN")
    return InfluxV2Sink(
        settings.influx_url,
        settings.influx_org,
        settings.influx_bucket,
        settings.influx_token.get_secret_value(),
        timeout_s=settings.influx_timeout_s,
    )
