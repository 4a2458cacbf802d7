"""Celery entry point of the cold chain: the periodic excursion scan over InfluxDB."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from tuanbox.worker.db import session_factory_for

# Beat runs the scan every minute: one reading per minute per sensor is the edge's cadence,
# and the duration rules count in minutes.
SCAN_EVERY_S = 60.0


@shared_task(name="coldchain.scan", bind=True, acks_late=True)
def scan_task(self: Any) -> dict[str, Any]:
    """Run one excursion scan and commit it; returns a small report for the result backend."""
    from telemetry.influx import InfluxClient
    from telemetry.settings import TelemetrySettings
    from traceability.settings import TraceSettings
    from tuanbox.coldchain.services import scan
    from tuanbox.db.base import utcnow
    from tuanbox.db.engine import session_scope
    from tuanbox.trace.provenance import TraceProvenance

    settings = self.app.conf.tuanbox_settings
    telemetry = getattr(self.app.conf, "telemetry_settings", None) or TelemetrySettings()
    trace = getattr(self.app.conf, "trace_settings", None) or TraceSettings()
    ttl = float(settings.command_ttl_s)
    with (
        InfluxClient.from_settings(telemetry) as influx,
        session_scope(session_factory_for(settings.database_url, settings)) as session,
    ):
        report = scan(session, influx, telemetry, now=utcnow(), command_ttl_s=ttl,
                      provenance=TraceProvenance(trace),
                      never_reported_after_min=settings.coldchain_silence_minutes)  # fmt: skip
    return {
        "skipped": report.skipped,
        "compartments": report.compartments,
        "readings": report.readings,
        "raised": report.raised,
        "cleared": report.cleared,
        "silent": report.silent,
        "held_orders": report.held_orders,
    }
