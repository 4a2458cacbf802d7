"""Telemetry store-and-forward: lines buffered in SQLite, flushed oldest-first to InfluxDB.

The buffer is bounded on disk (oldest dropped only past the bound, counted). A batch is
deleted only after InfluxDB answered 204, so an outage or a crash mid-write resends it;
that is harmless because every point carries its sampling time, and InfluxDB overwrites a
point with the same measurement, tags and timestamp instead of duplicating it.
"""

from __future__ import annotations

import logging
import random
import threading

import httpx

from edge.agent.errors import TelemetryWriteError
from edge.agent.ports import TelemetrySink
from edge.agent.schema import PRECISION
from edge.agent.settings import EdgeSettings
from edge.agent.store import Store

log = logging.getLogger(__name__)


class TelemetryBuffer:
    """The agent-facing half: append lines, never blocks on the network."""

    def __init__(self, store: Store, max_rows: int) -> None:
        self.store = store
        self.max_rows = max_rows

    def append(self, lines: list[str]) -> None:
        dropped = self.store.telemetry_append(lines, self.max_rows)
        if dropped:
            log.warning("telemetry buffer full: dropped %d oldest points", dropped)


class InfluxV1Sink(TelemetrySink):
    """InfluxDB 1.x ``POST /write?db=...&precision=ms``."""

    def __init__(
        self, url: str, db: str, *, timeout_s: float = 5.0, create_db: bool = True
    ) -> None:
        self.url, self.db, self.create_db = url.rstrip("/"), db, create_db
        self._client = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def write(self, lines: list[str]) -> None:
        params = {"db": self.db, "precision": PRECISION}
        response = _post(self._client, f"{self.url}/write", params, lines, {})
        if response.status_code == 404 and self.create_db and "database not found" in response.text:
            _post(self._client, f"{self.url}/query", {"q": f'CREATE DATABASE "{self.db}"'}, [], {})
            response = _post(self._client, f"{self.url}/write", params, lines, {})
        _check(response)


class InfluxV2Sink(TelemetrySink):
    """InfluxDB 2.x ``POST /api/v2/write?org=&bucket=&precision=ms`` with a token."""

    def __init__(
        self,
        url: str,
        org: str,
        bucket: str,
        token: str,
        *,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, self.org, self.bucket = url.rstrip("/"), org, bucket
        self._headers = {"Authorization": f"Token {token}"}
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def write(self, lines: list[str]) -> None:
        params = {"org": self.org, "bucket": self.bucket, "precision": PRECISION}
        _check(_post(self._client, f"{self.url}/api/v2/write", params, lines, self._headers))


def _post(
    client: httpx.Client,
    url: str,
    params: dict[str, str],
    lines: list[str],
    headers: dict[str, str],
) -> httpx.Response:
    try:
        return client.post(url, params=params, content="\n".join(lines).encode(), headers=headers)
    except httpx.HTTPError as exc:
        raise TelemetryWriteError(f"InfluxDB unreachable: {exc}") from exc


def _check(response: httpx.Response) -> None:
    if response.status_code == 204:
        return
    # 400/422 mean the lines themselves are bad: retrying would block the buffer forever.
    retryable = response.status_code >= 500 or response.status_code in (401, 403, 404, 429)
    raise TelemetryWriteError(
        f"InfluxDB answered {response.status_code}: {response.text[:200]}",
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
        from edge.agent.errors import ConfigError

        raise ConfigError("InfluxDB 2.x needs EDGE_INFLUX_ORG, _BUCKET and _TOKEN")
    return InfluxV2Sink(
        settings.influx_url,
        settings.influx_org,
        settings.influx_bucket,
        settings.influx_token.get_secret_value(),
        timeout_s=settings.influx_timeout_s,
    )


class TelemetryForwarder:
    """Background thread: oldest batch first, deleted after a 204, backoff while down."""

    def __init__(
        self,
        buffer: TelemetryBuffer,
        sink: TelemetrySink,
        *,
        batch_size: int,
        flush_interval_s: float,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.buffer, self.sink = buffer, sink
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.backoff_max_s = backoff_max_s
        self.written = 0
        self.rejected = 0
        self.last_error: TelemetryWriteError | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> TelemetryForwarder:
        self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.sink.close()

    def flush_once(self) -> int:
        """Send one batch; returns how many points left the buffer (written or rejected)."""
        batch = self.buffer.store.telemetry_batch(self.batch_size)
        if not batch:
            return 0
        try:
            self.sink.write([line for _, line in batch])
        except TelemetryWriteError as exc:
            if exc.retryable:
                raise
            log.error("InfluxDB refused %d points, dropping them: %s", len(batch), exc)
            self.rejected += len(batch)
        else:
            self.written += len(batch)
        self.buffer.store.telemetry_delete_through(batch[-1][0])
        return len(batch)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                sent = self.flush_once()
                self.last_error, backoff = None, 0.0
            except TelemetryWriteError as exc:
                self.last_error = exc
                backoff = min(max(backoff * 2, 0.5), self.backoff_max_s)
                log.warning("telemetry held back (%s); retry in %.1fs", exc.message, backoff)
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
                continue
            if sent < self.batch_size:
                # Caught up: let points gather for one interval so they go out as a batch.
                self._stop.wait(self.flush_interval_s)
