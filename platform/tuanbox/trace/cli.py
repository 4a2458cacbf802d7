"""`tuanbox trace …`: verify a report, deploy the contract, anchor now, export a lot's report.

Register with ``app.add_typer(tuanbox.trace.cli.app, name="trace")`` in ``tuanbox.cli``.
"""

from __future__ import annotations

from pathlib import Path

import typer

from traceability import cli as core

app = typer.Typer(
    help="Provenance: verify trace reports, deploy the anchor contract, anchor windows.",
    no_args_is_help=True,
)
app.command("verify")(core.verify)
app.command("deploy")(core.deploy)


@app.command("anchor")
def anchor() -> None:
    """Cut due windows and anchor them now (what the beat task does every tick)."""
    from traceability.errors import TraceError
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.settings import get_settings
    from tuanbox.trace.services import run_anchoring

    engine = make_engine(get_settings().database_url)
    try:
        summary = run_anchoring(make_session_factory(engine), get_trace_settings())
    except TraceError as exc:
        typer.echo(f"FAILED: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(
        f"windows cut: {len(summary.windows_cut)}, anchored: {len(summary.anchored)}, "
        f"failed: {len(summary.failed)}"
    )
    for window_id, error in summary.failed.items():
        typer.echo(f"  window {window_id}: {error}", err=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command("check-reorgs")
def check_reorgs() -> None:
    """Check recorded anchors are still on chain; re-anchor windows a reorg removed."""
    from traceability.errors import TraceError
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.settings import get_settings
    from tuanbox.trace import services

    engine = make_engine(get_settings().database_url)
    try:
        summary = services.check_reorgs(make_session_factory(engine), get_trace_settings())
    except TraceError as exc:
        typer.echo(f"FAILED: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(
        f"anchors checked: {summary.checked}, reorged: {len(summary.reorged)}, "
        f"re-anchored: {len(summary.reanchored)}, failed: {len(summary.failed)}"
    )
    for window_id, record in summary.reanchored.items():
        typer.echo(f"  window {window_id}: now tx {record.tx_hash} block {record.block_number}")
    for window_id, error in summary.failed.items():
        typer.echo(f"  window {window_id}: {error}", err=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command("report")
def report(
    gtin: str,
    lot: str,
    output: Path = typer.Option(Path("-"), "-o", "--output", help="File, or - for stdout."),
) -> None:
    """Export a lot's trace report JSON (what GET /api/v1/trace/{gtin}/{lot} returns)."""
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.settings import get_settings
    from tuanbox.trace.services import report_for

    trace = get_trace_settings()
    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            text = report_for(
                session, gtin, lot, rpc_url=trace.public_rpc_url or trace.rpc_url
            ).model_dump_json(indent=2)
    finally:
        engine.dispose()
    if str(output) == "-":
        typer.echo(text)
    else:
        output.write_text(text)
        typer.echo(f"wrote {output}")
