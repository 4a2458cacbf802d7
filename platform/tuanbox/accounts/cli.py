"""`tuanbox users`: bootstrap staff accounts (the first admin cannot be made through the API)."""

from __future__ import annotations

import typer

from tuanbox.accounts.models import Role

app = typer.Typer(
    help="Staff accounts (admins, ops, merchant staff, couriers).", no_args_is_help=True
)


@app.command("create")
def create(
    login: str = typer.Option(..., help="Login name."),
    role: Role = typer.Option(Role.ADMIN, help="admin, ops, merchant_staff or courier."),
    merchant_id: str | None = typer.Option(None, help="Required for merchant_staff and courier."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters."
    ),
) -> None:
    """Create a staff account directly in the database (audited as actor `cli`)."""
    from tuanbox.accounts.services import create_staff
    from tuanbox.audit.services import Actor
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.errors import TuanboxError
    from tuanbox.settings import get_settings

    if len(password) < 12:
        raise typer.BadParameter("the password needs at least 12 characters", param_hint="password")
    engine = make_engine(get_settings().database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            user = create_staff(
                session,
                Actor(id="cli", role="admin"),
                role=role,
                login=login,
                password=password,
                merchant_id=merchant_id,
            )
            typer.echo(f"created {user.role} {login} ({user.id})")
    except TuanboxError as exc:
        typer.secho(f"refused: {exc.detail} [{exc.code}]", fg="red", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@app.command("rotate-pii")
def rotate_pii() -> None:
    """Re-encrypt personal data still under an older PII key id, in batches, until none is left.

    Each batch is audited (action `pii.rotate`, actor `cli`) in the transaction that re-encrypts it.
    """
    from tuanbox.accounts.services import rotate_pii as rotate
    from tuanbox.audit.services import CLI, record
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    total = 0
    try:
        while True:
            with session_scope(make_session_factory(engine)) as session:
                changed = rotate(session, settings)
                if changed:
                    record(
                        session,
                        CLI,
                        "pii.rotate",
                        "pii_key",
                        settings.pii_key_id,
                        details={"fields": changed},
                        after={"key_id": settings.pii_key_id},
                    )
            total += changed
            if changed == 0:
                break
    finally:
        engine.dispose()
    typer.echo(f"re-encrypted {total} fields under key {settings.pii_key_id}")


@app.command("renormalise-phones")
def renormalise_phones() -> None:
    """Re-store shoppers' phones in E.164 and re-index them (once, after upgrading to 0012).

    Phones stored before E.164 (`8613800138000`, `13800138000`) were indexed as typed, so one
    person could hold two accounts; those pairs are listed for a person to merge, not merged.
    """
    from tuanbox.accounts.admin import renormalise_phones as renormalise
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.database_url)
    changed, after = 0, ""
    try:
        while True:
            with session_scope(make_session_factory(engine)) as session:
                batch = renormalise(session, settings, after_id=after)
            changed += batch.changed
            for user_id, owner in batch.duplicates:
                typer.echo(f"duplicate: user {user_id} has the phone of user {owner}; not changed")
            for user_id in batch.invalid:
                typer.echo(f"invalid: user {user_id} has a phone that is not a valid number")
            if batch.last_id is None:
                break
            after = batch.last_id
    finally:
        engine.dispose()
    typer.echo(f"re-stored {changed} phones in E.164")
