"""`tuanbox lockers …`: stations and lockers, broker credentials, the Mosquitto files."""

from __future__ import annotations

from pathlib import Path

import typer

from tuanbox.settings import get_settings

app = typer.Typer(help="Stations, lockers and their broker credentials.", no_args_is_help=True)


@app.command("add-station")
def add_station(
    station_id: str = typer.Argument(..., help="Station id (max 36 characters)."),
    name: str = typer.Option(..., help="Display name."),
    address: str = typer.Option(..., help="Street address."),
    lat: float = typer.Option(...),
    lon: float = typer.Option(...),
    notes: str = typer.Option("", help="Opening hours and access notes."),
) -> None:
    """Create a pickup station."""
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.lockers.services import create_station

    settings = get_settings()
    with session_scope(make_session_factory(make_engine(settings.database_url))) as session:
        create_station(
            session,
            id=station_id,
            name=name,
            address=address,
            lat=lat,
            lon=lon,
            opening_notes=notes,
        )
    typer.echo(f"station {station_id} created")


@app.command("station-wave")
def station_wave(
    station_id: str = typer.Argument(..., help="Station id."),
    timezone: str | None = typer.Option(None, help="IANA zone, e.g. Asia/Shanghai."),
    cutoff: str | None = typer.Option(None, help="Daily cutoff, local HH:MM."),
    departure: str | None = typer.Option(None, help="Courier departure, local HH:MM."),
) -> None:
    """Set a station's delivery wave (options left out take the deployment's defaults)."""
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.errors import TuanboxError
    from tuanbox.fulfilment.waves import schedule_for, set_schedule

    settings = get_settings()
    try:
        with session_scope(
            make_session_factory(make_engine(settings.database_url), settings)
        ) as session:
            station = set_schedule(
                session, station_id, timezone=timezone, cutoff=cutoff, departure=departure
            )
            plan = schedule_for(station, settings)
    except TuanboxError as exc:
        typer.secho(f"error: {exc.detail}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(
        f"station {station_id}: cutoff {plan.cutoff:%H:%M}, departure {plan.departure:%H:%M} "
        f"({plan.tz.key})"
    )


@app.command("add")
def add_locker(
    locker_id: str = typer.Argument(..., help="Locker id, also its MQTT username."),
    station: str = typer.Option(..., help="Station id."),
    boards: int = typer.Option(1, min=1, max=16, help="Lock boards (16 doors each)."),
) -> None:
    """Create a locker with the standard layout; prints its broker password ONCE."""
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.fulfilment.provisioning import provision_locker
    from tuanbox.lockers.services import standard_layout

    settings = get_settings()
    with session_scope(make_session_factory(make_engine(settings.database_url))) as session:
        _, password = provision_locker(
            session,
            settings,
            locker_id=locker_id,
            station_id=station,
            layout=standard_layout(boards),
        )
    typer.echo(f"locker {locker_id} created; broker username {locker_id}")
    typer.echo(f"broker password (shown once, stored hashed): {password}")


@app.command("credentials")
def credentials(locker_id: str = typer.Argument(..., help="Locker id.")) -> None:
    """Issue a new broker password for a locker (shown once); regenerate the broker files."""
    from tuanbox.audit.services import CLI, record
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.lockers.services import rotate_credentials

    settings = get_settings()
    with session_scope(make_session_factory(make_engine(settings.database_url))) as session:
        password = rotate_credentials(session, locker_id)
        record(session, CLI, "locker.credentials_rotate", "locker", locker_id)
    typer.echo(f"new broker password for {locker_id} (shown once): {password}")
    typer.echo("run `tuanbox lockers broker-config` and reload Mosquitto (SIGHUP) to apply it")


@app.command("broker-config")
def broker_config(
    out: Path = typer.Option(Path("var/mosquitto"), help="Directory for passwd, acl, conf."),
    port: int = typer.Option(1883, help="Listener port written into the conf snippet."),
) -> None:
    """Write the Mosquitto password file, ACL file and a listener snippet from the database.

    The bridge account is TUANBOX_MQTT_USERNAME / TUANBOX_MQTT_PASSWORD.
    """
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.lockers import credentials as creds
    from tuanbox.lockers.services import broker_accounts

    settings = get_settings()
    if not settings.mqtt_username or settings.mqtt_password is None:
        typer.echo(
            "set TUANBOX_MQTT_USERNAME and TUANBOX_MQTT_PASSWORD (the bridge's account)", err=True
        )
        raise typer.Exit(2)
    bridge = creds.BrokerAccount(
        settings.mqtt_username, creds.hash_password(settings.mqtt_password.get_secret_value())
    )
    with session_scope(make_session_factory(make_engine(settings.database_url))) as session:
        accounts = [bridge, *broker_accounts(session)]
    out.mkdir(parents=True, exist_ok=True)
    passwd, acl = out / "passwd", out / "acl"
    passwd.write_text(creds.render_password_file(accounts))
    passwd.chmod(0o600)
    acl.write_text(creds.render_acl_file([settings.mqtt_username]))
    (out / "tuanbox.conf").write_text(
        creds.render_mosquitto_conf(
            port=port, password_file=str(passwd.resolve()), acl_file=str(acl.resolve())
        )
    )
    typer.echo(f"wrote {len(accounts)} accounts to {passwd}, the ACL to {acl}")
    typer.echo(f"include {out / 'tuanbox.conf'} in mosquitto.conf (listener, files)")
