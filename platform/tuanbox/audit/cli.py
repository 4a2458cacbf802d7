"""`tuanbox audit …`: verify the audit log's hash chain, show its head, anchor the head now."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    help="Audit trail: verify the hash-chained audit log, show its head, anchor the head.",
    no_args_is_help=True,
)

EXIT_INTACT = 0
EXIT_BROKEN = 1  # the log was edited, rows deleted or reordered: the message names the seq
EXIT_UNCHECKED = 2  # the check could not run (database or chain unreachable, bad settings)


@app.command("verify")
def verify(
    chain: bool = typer.Option(
        False,
        "--chain",
        help="Also ask the chain (TRACE_RPC_URL) whether every anchored head is anchored there.",
    ),
    progress: bool | None = typer.Option(
        None,
        "--progress/--no-progress",
        help="Progress bar on stderr (default: when stderr is a terminal).",
    ),
    batch: int = typer.Option(2000, min=1, max=100_000, help="Entries read per query."),
) -> None:
    """Recompute every entry's hash and its link to the one before, in seq order.

    Exit 0: intact. Exit 1: broken; the message names the first bad seq (an edited, deleted
    or reordered entry, a chain head or an anchor that does not match). Exit 2: not checked.
    """
    from sqlalchemy.exc import SQLAlchemyError

    from traceability.errors import TraceError
    from traceability.lookup import RpcRootLookup
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.audit.verify import head_of, verify_log
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.settings import get_settings

    lookup, chain_id = None, None
    if chain:
        trace = get_trace_settings()
        lookup = RpcRootLookup(trace.rpc_url, timeout=trace.rpc_timeout_seconds)
    engine = make_engine(get_settings().database_url)
    tty = sys.stderr.isatty()
    show = tty if progress is None else progress
    try:
        with make_session_factory(engine)() as session:
            current = head_of(session)
            total = current.seq if current is not None else 0
            if lookup is not None:
                chain_id = lookup.chain_id()

            def advance(checked: int) -> None:
                if not show:
                    return
                line = f"verified {checked}/{total} ({100 * checked // max(total, 1)}%)"
                if tty:
                    sys.stderr.write(f"\r{line}")
                    sys.stderr.flush()
                else:
                    typer.echo(line, err=True)

            report = verify_log(
                session, lookup=lookup, chain_id=chain_id, progress=advance, batch=batch
            )
            if show and tty:
                sys.stderr.write("\n")
    except TraceError as exc:
        typer.echo(f"audit log NOT CHECKED: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(EXIT_UNCHECKED) from exc
    except SQLAlchemyError as exc:
        typer.echo(f"audit log NOT CHECKED: database error: {exc.__class__.__name__}", err=True)
        raise typer.Exit(EXIT_UNCHECKED) from exc
    finally:
        engine.dispose()
    if report.problem is not None:
        typer.echo(
            f"audit log BROKEN at seq {report.problem.seq} ({report.problem.kind}): "
            f"{report.problem.detail}",
            err=True,
        )
        typer.echo(f"entries intact before it: {report.entries}", err=True)
        raise typer.Exit(EXIT_BROKEN)
    on_chain = f", {report.anchors_on_chain} confirmed on chain" if chain else ""
    typer.echo(
        f"audit log intact: {report.entries} entries, head seq {report.head_seq}, "
        f"{report.anchors} anchored heads{on_chain}"
    )


@app.command("head")
def head() -> None:
    """Print the chain head (seq and hash) and the last anchored head: worth keeping elsewhere."""
    from sqlalchemy import select

    from tuanbox.audit.models import AuditAnchor
    from tuanbox.audit.verify import head_of
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.settings import get_settings

    engine = make_engine(get_settings().database_url)
    try:
        with make_session_factory(engine)() as session:
            current = head_of(session)
            last = session.scalars(
                select(AuditAnchor).order_by(AuditAnchor.seq.desc()).limit(1)
            ).first()
            if current is None:
                typer.echo("no audit chain head: run `tuanbox db upgrade`", err=True)
                raise typer.Exit(EXIT_UNCHECKED)
            typer.echo(f"head seq {current.seq} hash {current.hash}")
            if last is None:
                typer.echo("never anchored")
            else:
                typer.echo(
                    f"anchored seq {last.seq} hash {last.hash} in tx {last.tx_hash} "
                    f"(chain {last.chain_id}, contract {last.contract}, block {last.block_number})"
                )
    finally:
        engine.dispose()


@app.command("anchor")
def anchor() -> None:
    """Anchor the chain head now (what the beat job does every TUANBOX_AUDIT_ANCHOR_INTERVAL_S)."""
    from traceability.chain import ChainClient
    from traceability.errors import TraceError
    from traceability.settings import get_settings as get_trace_settings
    from tuanbox.audit.anchoring import anchor_head
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.settings import get_settings

    engine = make_engine(get_settings().database_url)
    try:
        done = anchor_head(make_session_factory(engine), ChainClient(get_trace_settings()))
    except TraceError as exc:
        typer.echo(f"FAILED: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    if done is None:
        typer.echo("nothing to anchor: the head has not moved since the last anchor")
        return
    typer.echo(
        f"anchored head seq {done.seq} ({done.entries} new entries) in tx {done.tx_hash}, "
        f"block {done.block_number}"
    )
