"""``tuanbox-edge``: run the locker agent, check its config and surroundings, or run a demo."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from edge.agent.errors import ConfigError, EdgeError
from edge.agent.settings import EdgeSettings, load_settings

app = typer.Typer(
    help="Tuanbox locker agent (runs on the locker's Raspberry Pi).",
    no_args_is_help=True,
    add_completion=False,
)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML or YAML config file (default: $EDGE_CONFIG)."),
]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: EdgeSettings) -> None:
    """JSON lines for journald unless on a terminal (or told otherwise)."""
    use_json = settings.log_format == "json" or (
        settings.log_format == "auto" and not sys.stderr.isatty()
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def _settings(config: Path | None) -> EdgeSettings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"config: {exc.message}", err=True)
        raise typer.Exit(2) from exc


def _wait_for_signal() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run the agent until SIGTERM/SIGINT (systemd restarts it on failure)."""
    settings = _settings(config)
    configure_logging(settings)
    from edge.agent.main import EdgeRuntime

    stop = _wait_for_signal()
    try:
        runtime = EdgeRuntime(settings).start()
    except EdgeError as exc:
        logging.getLogger("edge").error("cannot start: %s (%s)", exc.message, exc.code)
        raise typer.Exit(1) from exc
    stop.wait()
    runtime.stop()


@app.command()
def check(
    config: ConfigOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds per probe.")] = 3.0,
) -> None:
    """Test the config, serial ports, broker and InfluxDB; non-zero exit if anything is wrong."""
    settings = _settings(config)
    from edge.agent import checks

    # The probes' own retry warnings would only repeat what the summary below says.
    logging.basicConfig(level=logging.ERROR)

    results = checks.run_all(settings, timeout=timeout)
    width = max(len(r.name) for r in results)
    for r in results:
        typer.echo(f"{'ok  ' if r.ok else 'FAIL'} {r.name:<{width}}  {r.detail}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the sims' ptys and the state go.")] = Path(
        "var/edge-demo"
    ),
    locker_id: Annotated[str, typer.Option(help="Locker id.")] = "demo-locker",
    mqtt_host: Annotated[str, typer.Option()] = "127.0.0.1",
    mqtt_port: Annotated[int, typer.Option()] = 1883,
    influx_url: Annotated[str | None, typer.Option()] = None,
    public_key: Annotated[str | None, typer.Option(help="Pickup public key, base64.")] = None,
) -> None:
    """Start a simulated lock board and scanner plus the agent, until Ctrl-C."""
    from edge.agent.demo import run_locker

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    )
    stop = _wait_for_signal()
    locker = run_locker(
        locker_id,
        workdir,
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        influx_url=influx_url,
        pickup_public_key=public_key,
    )
    typer.echo(json.dumps(locker.describe(), indent=2))
    stop.wait()
    locker.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tuanbox-edge`` console script."""
    command: Callable[..., object] = app
    command(args=argv)
