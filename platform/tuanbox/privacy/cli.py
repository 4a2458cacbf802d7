"""`tuanbox pii`: rotate the PII key (with progress here, or in the background), see its status."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Personal data: key rotation (re-encrypt under TUANBOX_PII_KEY_ID).", no_args_is_help=True
)

# Who acts when an operator runs the command on a server.
OPERATOR = ("cli", "ops")


@app.command("rotate")
def rotate(
    background: bool = typer.Option(
        False, "--background", help="Queue the Celery task `pii.rotate` and return at once."
    ),
    batch: int | None = typer.Option(
        None, min=1, max=10000, help="Rows per transaction (default TUANBOX_PII_ROTATE_BATCH)."
    ),
) -> None:
    """Re-encrypt every personal field still under an older key id (or in clear) under the
    current one, and re-index phones. Resumable: stopped anywhere, it goes on from there.
    Audited (`pii.rotate.start` / `pii.rotate.finish`, actor `cli`)."""
    from tuanbox.audit.services import Actor
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.privacy import rotation
    from tuanbox.privacy.models import PiiRotation
    from tuanbox.settings import get_settings

    settings = get_settings()
    actor = Actor(*OPERATOR)
    if background:
        from tuanbox.worker.app import create_celery

        result = create_celery(settings).send_task(
            "pii.rotate", kwargs={"actor_id": actor.id, "actor_role": actor.role, "restart": True}
        )
        typer.echo(f"queued pii.rotate ({result.id}); follow it with `tuanbox pii status`")
        return
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)

    def show(step: rotation.Step) -> None:
        if step.target is not None:
            typer.echo(
                f"{step.target}: {step.changed} re-encrypted, {step.skipped} changed meanwhile, "
                f"{step.failed} unreadable ({step.scanned} read)"
            )

    try:
        with session_scope(factory) as session:
            rotation.start(session, settings, actor, restart=True)
        last = rotation.sweep(
            lambda: session_scope(factory), settings, actor, batch=batch, progress=show
        )
        with factory() as session:
            run = session.get(PiiRotation, settings.pii_key_id)
    finally:
        engine.dispose()
    assert run is not None
    typer.echo(
        f"key {settings.pii_key_id}: {run.rotated} rows re-encrypted, {run.failed} unreadable, "
        f"{last.remaining} still under another key"
    )
    if last.remaining:
        typer.secho(
            "keep the old keys in TUANBOX_PII_KEYS until `tuanbox pii status` shows 0 left",
            fg="yellow",
            err=True,
        )
        raise typer.Exit(1)


@app.command("status")
def status() -> None:
    """The current key's sweep (started, finished, counts) and rows left under other keys."""
    from tuanbox.db.engine import make_engine, make_session_factory
    from tuanbox.privacy import rotation
    from tuanbox.privacy.models import PiiRotation
    from tuanbox.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            run = session.get(PiiRotation, settings.pii_key_id)
            left = rotation.remaining(session, settings)
    finally:
        engine.dispose()
    typer.echo(f"current key id: {settings.pii_key_id}")
    if run is None:
        typer.echo("sweep: not started")
    else:
        where = ", ".join(
            f"{name} {'done' if state.get('done') else 'in progress'}"
            for name, state in (run.cursors or {}).items()
        )
        state = f"finished {run.finished_at:%Y-%m-%d %H:%M:%S}" if run.finished_at else "running"
        typer.echo(
            f"sweep: {state} (started {run.started_at:%Y-%m-%d %H:%M:%S} by {run.started_by}); "
            f"{run.rotated} re-encrypted, {run.skipped} changed meanwhile, {run.failed} "
            f"unreadable; {where or 'no table yet'}"
        )
    for name, count in left.items():
        typer.echo(f"{name}: {count} left under another key or in clear")
    typer.echo("old keys may be dropped" if not any(left.values()) else "keep the old keys")
