"""Broker down for 30 s: the locker keeps working, then delivers everything in order."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from edge.agent.main import EdgeRuntime
from edge.agent.scanner import SerialScanner
from firmware_sim.lockboard import LockBoardSim
from firmware_sim.scanner import ScannerSim
from firmware_sim.scenario import load_scenario
from firmware_sim.sensors import SensorsSim
from tests.edge.agent.support import (
    OwnMosquitto,
    PlatformClient,
    agent_settings,
    influx_create_db,
    influx_query,
    wait_until,
)
from tests.edge.agent.test_agent_sensors import ROOT, sensor_configs

OUTAGE_S = 30.0


@pytest.mark.slow
def test_broker_down_30s_events_and_telemetry_delivered_in_order(
    tmp_path: Path, influx_url: str, lockbus: LockBoardSim, scanner_sim: ScannerSim
) -> None:
    broker = OwnMosquitto(tmp_path / "mosquitto")
    broker.start()
    sensors = SensorsSim(
        load_scenario(ROOT / "firmware_sim" / "scenarios" / "steady.yaml"),
        w1_dir=tmp_path / "w1",
        modbus_link=tmp_path / "modbus",
        interval=0.2,
    )
    sensors.start()
    db = f"edge_outage_{uuid.uuid4().hex[:8]}"
    influx_create_db(influx_url, db)
    settings = agent_settings(
        tmp_path,
        mqtt_port=broker.port,
        mqtt_keepalive_s=5,
        serial_port=str(lockbus.link),
        serial_boards=2,
        scanner_port=str(scanner_sim.link),
        w1_dir=tmp_path / "w1",
        modbus_port=str(sensors.link),
        sensors=sensor_configs(sensors),
        sample_interval_seconds=0.5,
        health_interval_s=1.0,
        influx_url=influx_url,
        influx_db=db,
    )
    platform = PlatformClient("127.0.0.1", broker.port, settings.locker_id, persistent=True)
    runtime = EdgeRuntime(settings).start()
    stop = threading.Event()
    try:
        wait_until(lambda: runtime.link.connected, what="agent connected")
        assert isinstance(runtime.scanner, SerialScanner)
        wait_until(runtime.scanner.connected.is_set, what="scanner port open")
        scanner_sim.scan("before-outage")
        platform.wait_event("pickup_rejected")

        broker.stop()
        outage_began = time.time()
        wait_until(lambda: not runtime.link.connected, 15, "the agent to notice")
        # Life goes on at the locker while the broker is away: scans and a forced door.
        for n in range(20):
            scanner_sim.scan(f"during-outage-{n}")
        lockbus.open_door("0-4", force=True)
        wait_until(lambda: runtime.store.outbox_depth() >= 22, 10, "events stored offline")
        lockbus.close_door("0-4")
        stop.wait(OUTAGE_S - (time.time() - outage_began))  # the outage itself, not a poll
        outage_ended = time.time()
        held = runtime.store.outbox_depth()
        broker.start()

        wait_until(lambda: runtime.store.outbox_depth() == 0, 30, "the outbox to drain")
        last = runtime.store.last_seq()
        wait_until(lambda: {e.seq for e in platform.events} >= set(range(1, last + 1)), 30,
                   "every event at the platform")  # fmt: skip
        wait_until(lambda: runtime.store.telemetry_depth() == 0, 30, "telemetry flushed")
    finally:
        stop.set()
        runtime.stop()
        platform.close()
        sensors.stop()
        broker.stop()

    firsts: list[int] = []
    for event in platform.events:
        if event.seq not in firsts:
            firsts.append(event.seq)
    assert firsts == list(range(1, last + 1)), "events arrive in seq order, none missing"
    types = [e.type for e in platform.events]
    assert types.count("tamper") == 1
    assert held >= 23  # 20 scans, door opened, tamper, door closed

    window = f"time >= {int(outage_began * 1000)}ms AND time <= {int(outage_ended * 1000)}ms"
    cold = influx_query(influx_url, db, f"SELECT celsius FROM cold_chain WHERE {window}")  # noqa: S608 - our own integers
    assert len(cold) >= 3 * int(OUTAGE_S / 0.5) * 0.5  # sampling went on through the outage
    times = [row[0] for row in cold]
    assert times == sorted(times)
    health = influx_query(
        influx_url,
        db,
        f"SELECT mqtt_connected FROM locker_health WHERE {window}",  # noqa: S608
    )
    assert health and not any(row[1] for row in health[1:])
