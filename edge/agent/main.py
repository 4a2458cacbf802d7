"""Composition root: builds every adapter from ``EdgeSettings``, starts the threads, stops them.

Nothing here runs at import. ``EdgeRuntime(settings).start()`` is what ``tuanbox-edge run``,
the demo and the end-to-end tests all use; tests may pass their own lock board.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from edge.agent import schema
from edge.agent.core import LockerAgent
from edge.agent.errors import EdgeError, SerialLinkError
from edge.agent.lockboard import KerongBoard, LockBoard
from edge.agent.messages import BoardPolled, CommandMessage, ScannerLine
from edge.agent.mqtt import MqttLink
from edge.agent.scanner import SerialScanner, StdinScanner
from edge.agent.sensors import ModbusReader, ProbeReader, Sampler, W1Reader
from edge.agent.settings import EdgeSettings
from edge.agent.store import Store
from edge.agent.telemetry import TelemetryBuffer, TelemetryForwarder, make_sink

log = logging.getLogger(__name__)
PRUNE_INTERVAL_S = 6 * 3600


class EdgeRuntime:
    """One locker agent with all its threads."""

    def __init__(self, settings: EdgeSettings, *, board: LockBoard | None = None) -> None:
        self.settings = settings
        self.started_at = time.monotonic()
        self.store = Store(settings.db_path, outbox_max_rows=settings.outbox_max_rows)
        self.boot_id = self.store.new_boot()
        self.board = board or KerongBoard(
            settings.serial_port,
            baud=settings.serial_baud,
            polarity_closed_bit=settings.serial_polarity_closed_bit,
            reply_timeout_s=settings.serial_reply_timeout_s,
            reopen_backoff_max_s=settings.serial_reopen_backoff_max_s,
        )
        self.buffer = TelemetryBuffer(
            self.store,
            settings.influx_buffer_max_rows,
            commit_interval_s=settings.influx_commit_interval_s,
            commit_lines=settings.influx_batch_size,
        )
        self.link = MqttLink(
            settings,
            self.store,
            boot_id=self.boot_id,
            on_command=lambda payload: self.agent.post(CommandMessage(payload)),
        )
        self.agent = LockerAgent(
            settings, self.store, self.board, self.link, self.buffer, boot_id=self.boot_id
        )
        sink = make_sink(settings)
        self.forwarder = (
            TelemetryForwarder(
                self.buffer,
                sink,
                batch_size=settings.influx_batch_size,
                flush_interval_s=settings.influx_flush_interval_s,
            )
            if sink is not None
            else None
        )
        readers: dict[str, ProbeReader] = {}
        if settings.w1_dir is not None:
            readers["ds18b20"] = W1Reader(settings.w1_dir)
        if settings.modbus_port:
            readers["modbus"] = ModbusReader(
                settings.modbus_port, settings.modbus_baud, settings.modbus_timeout_s
            )
        self.sampler = (
            Sampler(settings, self.buffer, readers, self._sensor_fault, self._zone_interval)
            if settings.sensors
            else None
        )
        self.scanner: SerialScanner | StdinScanner | None = None
        if settings.scanner_port == "-":
            self.scanner = StdinScanner(self._scanned)
        elif settings.scanner_port:
            self.scanner = SerialScanner(
                settings.scanner_port, settings.scanner_baud, self._scanned
            )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _zone_interval(self, zone: str) -> float:
        """Per-zone interval from the config; else a ``configure``d one; else the default."""
        if zone in self.settings.zone_intervals:
            return self.settings.zone_intervals[zone]
        configured = self.agent.runtime.extra.get("sample_interval_seconds")
        return float(configured) if configured else self.settings.sample_interval_seconds

    def _scanned(self, line: str) -> None:
        self.agent.post(ScannerLine(line))

    def _sensor_fault(self, payload: dict[str, object]) -> None:
        self.agent.emit("sensor_fault", payload)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> EdgeRuntime:
        log.info("locker %s starting, boot %s", self.settings.locker_id, self.boot_id)
        if isinstance(self.board, KerongBoard):
            self.board.start()
        self.buffer.start()
        self.link.start()
        for target, name in ((self.agent.run, "agent"), (self._poll, "poller")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        for part in (self.forwarder, self.sampler, self.scanner):
            if part is not None:
                part.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for part in (self.scanner, self.sampler, self.forwarder):
            if part is not None:
                part.stop()
        self.agent.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self.buffer.stop()  # commits the points still queued: a clean stop loses none
        self.link.stop()
        self.board.close()
        self.store.close()

    def wait(self) -> None:
        self._stop.wait()

    # --- the poller: door states and health --------------------------------------------

    def _poll(self) -> None:
        next_health = next_prune = time.monotonic()
        failures = 0
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                for board in range(self.settings.serial_boards):
                    status = self.board.read_status(board)
                    self.agent.post(BoardPolled(status, time.monotonic()))
                failures = 0
            except SerialLinkError as exc:
                failures += 1
                # One line per outage, not one per poll.
                if failures == 1:
                    log.warning("lock board not answering: %s", exc.message)
            except Exception:  # supervisor loop: polling must go on whatever happens
                log.exception("door polling failed")
            if began >= next_health:
                next_health = began + self.settings.health_interval_s
                self._health()
            if began >= next_prune:
                next_prune = began + PRUNE_INTERVAL_S
                self._prune()
            interval = self.agent.runtime.extra.get(
                "poll_interval_ms", self.settings.serial_poll_interval_ms
            )
            self._stop.wait(max(0.0, interval / 1000 - (time.monotonic() - began)))

    def _prune(self) -> None:
        try:
            removed = self.store.prune(datetime.now(UTC))
        except EdgeError as exc:
            log.warning("pruning the state database failed: %s", exc.message)
            return
        if removed:
            log.info("pruned %d old command ids and used tokens", removed)

    def _health(self) -> None:
        try:
            line = schema.locker_health(
                self.settings.locker_id,
                int(time.time() * 1000),
                outbox_depth=self.store.outbox_depth(),
                mqtt_connected=self.link.connected,
                uptime_s=int(time.monotonic() - self.started_at),
                dropped_points=self.store.dropped_points(),
                dropped_events=self.store.dropped_events(),
                telemetry_backlog=self.store.telemetry_depth(),
            )
            self.buffer.append([line])
        except Exception:  # supervisor loop: health is best effort
            log.exception("health sample failed")
