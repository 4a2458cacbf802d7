"""Child process of the writer's kill -9 drill: the agent's telemetry writer under a steady load.

``python -m tests.edge.agent.writer_drill <db> <influx url> <influx db> <start ms>`` appends
``cold_chain`` points numbered 0, 1, 2, ... (point n is stamped ``start ms + n``) through
``TelemetryBuffer`` (group commit) with a ``TelemetryForwarder`` sending them on, and prints
``<committed> <appended>`` each time the committed watermark moves: a line is printed only
after its commit returned, so every point below a printed watermark was reported stored.
"""

from __future__ import annotations

import sys
import threading

from edge.agent import schema
from edge.agent.store import Store
from edge.agent.telemetry import InfluxV1Sink, TelemetryBuffer, TelemetryForwarder

CHUNK = 20  # points per append, like a sampler reading a zone


def point(start_ms: int, n: int) -> str:
    return schema.cold_chain("drill", "0-1", "chilled", "p1", start_ms + n, 3.0, 60.0)


def main(db: str, influx_url: str, influx_db: str, start_ms: int) -> None:
    store = Store(db)
    buffer = TelemetryBuffer(store, 10_000_000, commit_interval_s=0.1, commit_lines=500).start()
    forwarder = TelemetryForwarder(
        buffer,
        InfluxV1Sink(influx_url, influx_db, timeout_s=1.0),
        batch_size=500,
        flush_interval_s=0.05,
        backoff_max_s=0.2,
    ).start()
    del forwarder  # runs until the process is killed
    pace = threading.Event()  # never set: its wait() paces the producer

    def report() -> None:
        seen = 0
        while True:
            committed = buffer.committed
            if committed > seen:
                seen = committed
                print(committed, buffer.appended, flush=True)
            pace.wait(0.005)

    threading.Thread(target=report, daemon=True).start()
    n = 0
    while True:
        buffer.append([point(start_ms, i) for i in range(n, n + CHUNK)])
        n += CHUNK
        pace.wait(0.002)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
