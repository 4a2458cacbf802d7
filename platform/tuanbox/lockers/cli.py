"""`tuanbox lockers …`: stations and lockers, broker credentials, the Mosquitto files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from tuanbox.settings import get_settings

if TYPE_CHECKING:
    from tuanbox.lockers.credentials import BrokerAccount

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
    with session_scope(
        make_session_factory(make_engine(settings.database_url), settings)
    ) as session:
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
    with session_scope(
        make_session_factory(make_engine(settings.database_url), settings)
    ) as session:
        _, password = provision_locker(
            session,
            settings,
            locker_id=locker_id,
            station_id=station,
            layout=standard_layout(boards),
        )
    typer.echo(f"locker {locker_id} created; broker username {locker_id}")
    typer.echo(f"broker password (shown once, stored hashed): {password}")
    typer.echo("run `tuanbox lockers broker-config`, then restart Mosquitto, to let it log in")


def _broker_accounts_or_exit() -> list[BrokerAccount]:
    settings = get_settings()
    if not settings.mqtt_username or settings.mqtt_password is None:
        typer.echo(
            "set TUANBOX_MQTT_USERNAME and TUANBOX_MQTT_PASSWORD (the bridge's account)", err=True
        )
        raise typer.Exit(2)
    from tuanbox.lockers.credentials import BrokerAccount, hash_password

    password = settings.mqtt_password.get_secret_value()
    return [BrokerAccount(settings.mqtt_username, hash_password(password))]


def _write_files(out: Path, broker_group: str | None, port: int, plugin: str | None) -> None:
    """Regenerate the broker's files from the database (see tuanbox.lockers.brokerfiles)."""
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.lockers import brokerfiles
    from tuanbox.lockers.errors import BrokerFilesError
    from tuanbox.lockers.services import broker_accounts

    settings = get_settings()
    bridges = _broker_accounts_or_exit()
    with session_scope(make_session_factory(make_engine(settings.database_url), settings)) as s:
        lockers = broker_accounts(s)
    try:
        written = brokerfiles.write_broker_files(
            out,
            bridges=bridges,
            lockers=lockers,
            gid=brokerfiles.broker_gid(broker_group),
            port=port,
            plugin=brokerfiles.plugin_path(plugin),
        )
    except BrokerFilesError as exc:
        typer.echo(f"{exc.code}: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"wrote {out / brokerfiles.PASSWD} (bridges), {out / brokerfiles.DYNSEC} "
        f"({written.lockers} lockers), {out / brokerfiles.ACL}: mode 0640, group {written.gid}"
    )
    typer.echo(f"include {out / brokerfiles.CONF} in mosquitto.conf (listener, files, plugin)")


OUT = typer.Option(Path("var/mosquitto"), help="Directory for passwd, acl, plugin file, conf.")
GROUP = typer.Option(
    None,
    help="Group (name or gid) the broker runs as; default: this host's `mosquitto` group, "
    "else 1883 (the eclipse-mosquitto image).",
)
PLUGIN = typer.Option(
    None, help="Path of mosquitto_dynamic_security.so as the broker sees it (default: found)."
)


@app.command("credentials")
def credentials(
    locker_id: str = typer.Argument(..., help="Locker id."),
    out: Path = OUT,
    broker_group: str | None = GROUP,
    port: int = typer.Option(1883, help="Listener port written into the conf snippet."),
    plugin: str | None = PLUGIN,
) -> None:
    """Issue a new broker password for a locker (shown once) and rewrite the broker's files."""
    from tuanbox.audit.services import CLI, record
    from tuanbox.db.engine import make_engine, make_session_factory, session_scope
    from tuanbox.lockers.brokerfiles import APPLY
    from tuanbox.lockers.services import rotate_credentials

    settings = get_settings()
    _broker_accounts_or_exit()  # before rotating: the files must be rewritable
    with session_scope(make_session_factory(make_engine(settings.database_url), settings)) as s:
        password = rotate_credentials(s, locker_id)
        record(s, CLI, "locker.credentials_rotate", "locker", locker_id)
    typer.echo(f"new broker password for {locker_id} (shown once): {password}")
    _write_files(out, broker_group, port, plugin)
    typer.echo(APPLY)


@app.command("broker-config")
def broker_config(
    out: Path = OUT,
    port: int = typer.Option(1883, help="Listener port written into the conf snippet."),
    broker_group: str | None = GROUP,
    plugin: str | None = PLUGIN,
) -> None:
    """Write Mosquitto's password file (bridges), ACL file, dynamic-security file (lockers:
    logins and the one topic each may subscribe to) and a snippet using them.

    The bridge account is TUANBOX_MQTT_USERNAME / TUANBOX_MQTT_PASSWORD. Files are group
    `--broker-group`, mode 0640, so the broker running as its own user reads them.
    """
    from tuanbox.lockers.brokerfiles import APPLY

    _write_files(out, broker_group, port, plugin)
    typer.echo(APPLY)
