"""The `tuanbox` command: one entry point with a subcommand per platform process."""

from __future__ import annotations

from pathlib import Path

import typer

from tuanbox.accounts.cli import app as users_app
from tuanbox.audit.cli import app as audit_app
from tuanbox.coldchain.cli import app as coldchain_app
from tuanbox.devservices.manager import ServiceStatus
from tuanbox.lockers.cli import app as lockers_app
from tuanbox.privacy.cli import app as pii_app
from tuanbox.settings import get_settings
from tuanbox.trace.cli import app as trace_app

app = typer.Typer(
    help="Tuanbox: community group-buy fulfilled through smart pickup lockers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
services_app = typer.Typer(
    help="Local services (PostgreSQL and its replica, Redis, Mosquitto, InfluxDB, anvil).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(services_app, name="services")
app.add_typer(coldchain_app, name="coldchain")
app.add_typer(lockers_app, name="lockers")
app.add_typer(trace_app, name="trace")
app.add_typer(pii_app, name="pii")
app.add_typer(audit_app, name="audit")


def _configure_logging() -> None:
    from tuanbox.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)


@app.command()
def api(
    host: str | None = typer.Option(None, help="Bind address (default TUANBOX_API_HOST)."),
    port: int | None = typer.Option(None, help="Port (default TUANBOX_API_PORT)."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the REST API and web pages with uvicorn.

    In production with stream writes it refuses to start unless Redis keeps every write
    (appendonly yes, appendfsync always): see tuanbox.api.redis_durability."""
    import uvicorn

    from tuanbox.api.redis_durability import RedisNotDurableError, require_durable_redis

    settings = get_settings()
    try:
        require_durable_redis(settings)
    except RedisNotDurableError as exc:
        typer.echo(f"tuanbox api: not starting: {exc}", err=True)
        raise typer.Exit(2) from exc
    uvicorn.run(
        "tuanbox.api.app:app_from_env",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        log_config=None,
        # X-Forwarded-For is believed only from TUANBOX_TRUSTED_PROXIES (none by default),
        # never from uvicorn's own FORWARDED_ALLOW_IPS default; see ratelimit.deps.client_ip.
        proxy_headers=True,
        forwarded_allow_ips=settings.trusted_proxies,
        # With several workers uvicorn pings each one and kills (then respawns) any that does
        # not answer within this many seconds, including one still importing the app: on a
        # busy box (load 12+ on 2 cores) the import took longer than the default 5 s and the
        # workers were killed and respawned forever, never serving.
        timeout_worker_healthcheck=60,
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(ctx: typer.Context) -> None:
    """Run a Celery worker (extra arguments go to Celery, e.g. `-Q default -c 4`)."""
    from tuanbox.worker.app import create_celery

    _configure_logging()
    create_celery(get_settings()).worker_main(["worker", "--loglevel=INFO", *ctx.args])


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def beat(ctx: typer.Context) -> None:
    """Run Celery beat, which sends the periodic jobs."""
    from tuanbox.worker.app import create_celery

    _configure_logging()
    create_celery(get_settings()).start(["beat", "--loglevel=INFO", *ctx.args])


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply Alembic migrations to TUANBOX_DATABASE_URL."""
    from tuanbox.db.migrate import upgrade

    settings = get_settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {settings.database_url.split('@')[-1]} is at {revision}")


@services_app.command("install")
def services_install(
    browser: bool = typer.Option(True, help="Also install Chromium for browser tests."),
    compose: bool = typer.Option(True, help="Also install docker-compose to validate the stack."),
) -> None:
    """Install missing Debian packages (as root) and the pinned npm tools."""
    from tuanbox.devservices import ServiceManager
    from tuanbox.devservices.manager import ServiceError

    # The CJK font lets headless Chromium render the shopper pages' Chinese text.
    extra = (("chromium", "fonts-noto-cjk") if browser else ()) + (
        ("docker-compose",) if compose else ()
    )
    try:
        ServiceManager(Path.cwd()).install(extra)
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo("all packages installed")


@services_app.command("up")
def services_up() -> None:
    """Start every service that does not answer, then print the status table."""
    from tuanbox.devservices import ServiceManager
    from tuanbox.devservices.manager import ServiceError

    manager = ServiceManager(Path.cwd())
    try:
        manager.install()
        rows = manager.up(log=lambda m: typer.echo(m, err=True))
    except ServiceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _print_status(rows)


@services_app.command("status")
def services_status() -> None:
    """Print each service, its URL and whether it answers (exit 1 if one does not)."""
    from tuanbox.devservices import ServiceManager

    rows = ServiceManager(Path.cwd()).status()
    _print_status(rows)
    if not all(r.ok for r in rows):
        raise typer.Exit(1)


@services_app.command("down")
def services_down() -> None:
    """Stop the services the project started (InfluxDB, anvil, the PostgreSQL replica)."""
    from tuanbox.devservices import ServiceManager

    ServiceManager(Path.cwd()).down(log=typer.echo)


def _print_status(rows: list[ServiceStatus]) -> None:
    typer.echo(f"{'service':<11} {'url':<30} {'state':<6} detail")
    for r in rows:
        typer.echo(f"{r.name:<11} {r.url:<30} {'up' if r.ok else 'DOWN':<6} {r.detail}")


@app.command()
def bridge(
    client_id: str | None = typer.Option(None, help="MQTT client id (default: per host)."),
    shared: bool = typer.Option(
        False, "--shared", help="Shared subscriptions only (extra bridges beside the durable one)."
    ),
) -> None:
    """Run the MQTT bridge: publish the command outbox, apply acks, events, state, status."""
    from tuanbox.dispatch.process import run_bridge

    _configure_logging()
    run_bridge(get_settings(), client_id=client_id, durable=False if shared else None)


@app.command("flash-orders")
def flash_orders(
    name: str | None = typer.Option(
        None, help="Consumer name (default: the host name); one per process, kept across restarts."
    ),
) -> None:
    """Write flash-sale winners' orders from the sales' Redis Streams in batches (needed with
    TUANBOX_FLASH_ORDER_WRITES=stream; run one or more beside the API)."""
    from tuanbox.flashsale.orderstream import run_consumer

    _configure_logging()
    run_consumer(get_settings(), name=name)


@app.command("group-joins")
def group_joins(
    name: str | None = typer.Option(
        None, help="Consumer name (default: the host name); one per process, kept across restarts."
    ),
) -> None:
    """Write admitted group joins from the joins Redis Stream in batches (needed with
    TUANBOX_GROUP_JOIN_WRITES=stream; run one or more beside the API)."""
    from tuanbox.groupbuy.joinstream import run_consumer

    _configure_logging()
    run_consumer(get_settings(), name=name)


@app.command()
def demo() -> None:
    """Run the whole flow end to end on embedded defaults and print what happened."""
    from tuanbox.demo import run_demo

    raise typer.Exit(run_demo(get_settings()))


@app.command("run")
def run_local(
    host: str | None = typer.Option(None, help="Bind address (default TUANBOX_API_HOST)."),
    port: int | None = typer.Option(None, help="Port (default TUANBOX_API_PORT)."),
    name: str = typer.Option(
        "run", help="Instance name: its locker ids, bridge client id and var/run/<name>/."
    ),
) -> None:
    """Run every process and two simulated lockers over a demo catalogue, until Ctrl-C."""
    from tuanbox.run import run

    settings = get_settings()
    host, port = host or settings.api_host, port or settings.api_port
    raise typer.Exit(run(settings, host=host, port=port, name=name))


def main() -> None:
    app()
