"""Telemetry store-and-forward: lines group-committed to SQLite, sent oldest-first to InfluxDB.

Writing: ``TelemetryBuffer.append`` only queues lines in memory; one writer thread commits
everything queued in a single transaction at most ``commit_interval_s`` after the first of
them, or at once when a batch's worth is waiting (group commit: one fsync per group, not
per point). A point is *stored* once its commit has returned — ``committed`` is the
watermark, ``flush()`` commits now and ``stop()`` commits the rest. A stored point survives
kill -9, a power cut (``synchronous=FULL``) and an InfluxDB outage; kill -9 can lose only
points appended after the last commit, i.e. never a stored one and at most one interval's
worth (100 ms by default). Until ``start()`` every append commits on the caller's thread.

Sending: the buffer is bounded on disk (oldest dropped only past the bound, counted). A batch
is deleted only after InfluxDB answered 204, so an outage or a crash mid-write resends it;
that is harmless because every point carries its sampling time, and InfluxDB overwrites a
point with the same measurement, tags and timestamp instead of duplicating it.
"""

from __future__ import annotations

import logging
import random
import threading

from edge.agent.errors import EdgeError, TelemetryWriteError
from edge.agent.influx import InfluxV1Sink, InfluxV2Sink, make_sink
from edge.agent.ports import TelemetrySink
from edge.agent.store import TELEMETRY_ROW_POINTS, Store, TelemetryRow

__all__ = [
    "InfluxV1Sink",
    "InfluxV2Sink",
    "TelemetryBuffer",
    "TelemetryForwarder",
    "make_sink",
]

log = logging.getLogger(__name__)


class TelemetryBuffer:
    """The agent-facing half: append never blocks on the network nor, once started, on disk."""

    def __init__(
        self,
        store: Store,
        max_rows: int,
        *,
        commit_interval_s: float = 0.1,
        commit_lines: int = 500,
        max_pending: int = 20_000,
    ) -> None:
        self.store = store
        self.max_rows = max_rows
        self.commit_interval_s = commit_interval_s
        self.commit_lines = commit_lines
        # Past this many queued points the appender commits them itself (backpressure); only
        # if that fails too (the disk is stuck) are the oldest queued dropped, and counted.
        self.max_pending = max_pending
        self.appended = 0  # lines ever appended; the n-th line's ticket is n
        self.committed = 0  # every ticket up to this is in SQLite (or dropped and counted)
        self.commits = 0
        self._pending: list[str] = []
        self._overflow = 0
        self._sent_through = 0  # rows InfluxDB took, deleted with the next commit
        self._lock = threading.Lock()  # the queue and counters
        self._commit_lock = threading.Lock()  # one commit at a time, in ticket order
        self._queued = threading.Event()  # the queue went from empty to not empty
        self._full = threading.Event()  # a batch's worth is waiting
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> TelemetryBuffer:
        self._thread = threading.Thread(target=self._run, name="telemetry-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Commit whatever is queued, then stop the writer (a clean stop loses nothing)."""
        self._stop.set()
        self._queued.set()
        self._full.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def append(self, lines: list[str]) -> int:
        """Queue ``lines``; returns the ticket of the last one (stored once ``committed`` ≥ it)."""
        with self._lock:
            was_empty = not self._pending
            self._pending.extend(lines)
            self.appended += len(lines)
            ticket = self.appended
            if was_empty and self._pending:
                self._queued.set()
            if len(self._pending) >= self.commit_lines:
                self._full.set()
            behind = len(self._pending) > self.max_pending
        if self._thread is None or behind:
            try:
                self.flush()
            except EdgeError:
                if self._thread is None:
                    raise
                self._shed_queue()
        return ticket

    def mark_sent(self, last_id: int) -> None:
        """Rows up to ``last_id`` are in InfluxDB: delete them with the next commit.

        Not worth an fsync of its own: if a crash loses the delete, the rows are sent again
        and InfluxDB overwrites each point with itself.
        """
        with self._lock:
            self._sent_through = max(self._sent_through, last_id)
            self._queued.set()
        if self._thread is None:
            self.flush()

    def _shed_queue(self) -> None:
        with self._lock:
            overflow = len(self._pending) - self.max_pending
            if overflow > 0:
                del self._pending[:overflow]
                self._overflow += overflow
                log.error("telemetry queue over %d with the disk failing: dropped %d oldest",
                          self.max_pending, overflow)  # fmt: skip

    def flush(self) -> int:
        """Commit everything queued now, in one transaction; returns the committed watermark."""
        with self._commit_lock:
            with self._lock:
                lines, self._pending = self._pending, []
                overflow, self._overflow = self._overflow, 0
                sent, self._sent_through = self._sent_through, 0
                through = self.appended
                self._queued.clear()
                self._full.clear()
            if lines or overflow or sent:
                try:
                    dropped = self.store.telemetry_commit(
                        lines,
                        self.max_rows,
                        dropped=overflow,
                        sent_through=sent,
                        row_points=min(TELEMETRY_ROW_POINTS, self.commit_lines),
                    )
                except EdgeError:
                    with self._lock:  # keep them for the next commit, oldest still first
                        self._pending[:0] = lines
                        self._overflow += overflow
                        self._sent_through = max(self._sent_through, sent)
                        self._queued.set()
                    raise
                self.commits += 1
                if dropped:
                    log.warning("telemetry buffer full: dropped %d oldest points", dropped)
            self.committed = through
        return through

    def _run(self) -> None:
        while not self._stop.is_set():
            self._queued.wait()
            # Gather for one interval after the first queued line, or until a batch waits.
            self._full.wait(self.commit_interval_s)
            try:
                self.flush()
            except EdgeError as exc:
                log.error("telemetry commit failed, retrying: %s", exc.message)
                self._stop.wait(self.commit_interval_s)


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
        self._cursor = 0  # last row handed to InfluxDB; its delete rides on the next commit
        self._ahead: list[TelemetryRow] | None = None  # the rows after the cursor, read early
        self.behind = False  # more rows wait than the last batch took
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
        """Send one batch; returns how many points left the buffer (written or rejected).

        While InfluxDB works on a batch, the next one is read from SQLite (and used only if
        this one left the buffer): the read no longer adds to each batch's round trip."""
        store = self.buffer.store
        batch, self._ahead = self._ahead, None
        if not batch:
            batch = store.telemetry_batch(self.batch_size, after=self._cursor)
        self.behind = False
        if not batch:
            return 0
        points = sum(row.points for row in batch)
        ahead: list[TelemetryRow] | None = None

        def read_ahead() -> None:
            nonlocal ahead
            try:
                ahead = store.telemetry_batch(self.batch_size, after=batch[-1].id)
            except EdgeError as exc:  # only an optimisation: the next call reads again
                log.warning("telemetry read-ahead failed: %s", exc.message)

        try:
            self.sink.write_overlapped([row.text for row in batch], read_ahead)
        except TelemetryWriteError as exc:
            if exc.retryable:
                raise
            log.error("InfluxDB refused %d points, dropping them: %s", points, exc)
            self.rejected += points
        else:
            self.written += points
        self._cursor = batch[-1].id
        self.buffer.mark_sent(self._cursor)
        self._ahead = ahead
        if ahead is not None:
            self.behind = bool(ahead)
        else:
            self.behind = points >= self.batch_size or store.telemetry_waiting(after=self._cursor)
        return points

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            try:
                self.flush_once()
                self.last_error, backoff = None, 0.0
            except TelemetryWriteError as exc:
                self.last_error = exc
                backoff = min(max(backoff * 2, 0.5), self.backoff_max_s)
                log.warning("telemetry held back (%s); retry in %.1fs", exc.message, backoff)
                self._stop.wait(backoff * random.uniform(0.8, 1.2))
                continue
            if not self.behind:
                # Caught up: let points gather for one interval so they go out as a batch.
                self._stop.wait(self.flush_interval_s)
