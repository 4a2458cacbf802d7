"""`tuanbox coldchain …`: prepare InfluxDB (retention, rollups) and run one excursion scan now."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Cold chain: InfluxDB retention and rollups, excursion scans.", no_args_is_help=True
)


@app.command("setup")
def setup() -> None:
    """Create the telemetry database, retention policies and 5-minute rollups (1.x)."""
    from telemetry.errors import TelemetryError
    from telemetry.influx import InfluxClient
    from telemetry.retention import apply_retention
    from telemetry.settings import TelemetrySettings

    telemetry = TelemetrySettings()
    try:
        with InfluxClient.from_settings(telemetry) as influx:
            names = apply_retention(influx, telemetry)
    except TelemetryError as exc:
        typer.secho(f"{exc.code}: {exc.message}", fg="red", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{telemetry.influx_database}: {telemetry.raw_retention_policy} "
        f"({telemetry.raw_retention}, default), {telemetry.rollup_retention_policy} "
        f"({telemetry.rollup_retention}); continuous queries {', '.join(names)}"
    )


@app.command("scan")
def scan_now() -> None:
    """Run one excursion scan now (what beat runs every minute) and print its report."""
    from telemetry.errors import TelemetryError
    from telemetry.influx import InfluxClient
    from telemetry.settings import TelemetrySettings
    from traceability.settings import TraceSettings
    from tuanbox.coldchain.services import scan
    from tuanbox.db.base import utcnow
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.settings import get_settings
    from tuanbox.trace.provenance import TraceProvenance

    settings = get_settings()
    telemetry = TelemetrySettings()
    engine = make_engine(settings.database_url)
    try:
        with (
            InfluxClient.from_settings(telemetry) as influx,
            session_scope(make_session_factory(engine, settings)) as session,
        ):
            report = scan(session, influx, telemetry, now=utcnow(),
                          command_ttl_s=settings.command_ttl_s,
                          provenance=TraceProvenance(TraceSettings()),
                          never_reported_after_min=settings.coldchain_silence_minutes)  # fmt: skip
    except TelemetryError as exc:
        typer.secho(f"{exc.code}: {exc.message}", fg="red", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(
        f"{report.compartments} compartments, {report.readings} readings; raised "
        f"{report.raised or 'none'}, cleared {report.cleared or 'none'}, silent "
        f"{report.silent or 'none'}, held {report.held_orders or 'none'}"
    )
