"""``python -m firmware_sim``: run a simulator on a pty, or drive one through its socket."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from firmware_sim.control import ControlServer, request
from firmware_sim.device import SerialDevice
from firmware_sim.errors import SimError
from firmware_sim.lockboard import LockBoardSim
from firmware_sim.scanner import ScannerSim
from firmware_sim.scenario import load_scenario
from firmware_sim.sensors import SensorsSim
from firmware_sim.settings import SimSettings

SCENARIOS = Path(__file__).parent / "scenarios"


def _polarity(value: str) -> int:
    if value not in ("closed=1", "closed=0"):
        raise argparse.ArgumentTypeError("use closed=1 or closed=0")
    return int(value[-1])


def _build_parser(env: SimSettings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_sim",
        description=__doc__,
        epilog="Defaults come from SIM_* environment variables (see README); flags win.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    board = sub.add_parser("lockboard", help="Kerong KR-CU16 boards on a pty")
    board.add_argument("--link", required=True, help="symlink path to create for the pty")
    board.add_argument("--boards", type=int, default=env.boards, help="boards on the bus (1-16)")
    board.add_argument("--locks", type=int, default=env.locks, help="locks per board (1-16)")
    board.add_argument(
        "--polarity",
        type=_polarity,
        default=_polarity(env.polarity),
        help="hook bit meaning closed: closed=1|closed=0",
    )
    board.add_argument(
        "--door-open-delay", type=float, default=env.door_open_delay, help="seconds to swing open"
    )
    board.add_argument(
        "--auto-close", type=float, default=env.auto_close, help="close doors after s"
    )
    board.add_argument("--seed", type=int, default=None, help="seed for garbage bytes")
    board.add_argument("--control", help="UNIX socket path for the control API")

    sensors = sub.add_parser("sensors", help="DS18B20 sysfs tree and a Modbus RTU slave")
    sensors.add_argument("--w1-dir", required=True, help="directory to hold 28-*/w1_slave")
    sensors.add_argument("--modbus-link", required=True, help="symlink path for the Modbus pty")
    sensors.add_argument("--scenario", required=True, help="scenario .yaml/.yml/.json")
    sensors.add_argument(
        "--interval", type=float, default=env.sensor_interval, help="w1 rewrite period, s"
    )
    sensors.add_argument("--control", help="UNIX socket path for the control API")

    scanner = sub.add_parser("scanner", help="a QR scanner emitting lines from stdin/control")
    scanner.add_argument("--link", required=True, help="symlink path to create for the pty")
    scanner.add_argument("--control", help="UNIX socket path for the control API")
    scanner.add_argument("--suffix", choices=["crlf", "cr", "lf"], default=env.scanner_suffix)

    locker = sub.add_parser("locker", help="lock board + sensors + scanner of one locker")
    locker.add_argument("--dir", required=True, help="links, w1 tree and sockets go here")
    locker.add_argument("--scenario", help="sensors scenario (default: the shipped steady.yaml)")
    locker.add_argument("--boards", type=int, default=env.boards, help="boards on the bus (1-16)")
    locker.add_argument(
        "--polarity",
        type=_polarity,
        default=_polarity(env.polarity),
        help="hook bit meaning closed: closed=1|closed=0",
    )
    locker.add_argument(
        "--door-open-delay", type=float, default=env.door_open_delay, help="seconds to swing open"
    )

    ctl = sub.add_parser("ctl", help="send one request to a running simulator")
    ctl.add_argument("--control", required=True, help="the simulator's control socket")
    actions = ctl.add_subparsers(dest="action", required=True)
    actions.add_parser("get_state", help="print the simulator's state as JSON")
    for name in ("open_door", "place_item", "remove_item"):
        action = actions.add_parser(name, help=f"{name.replace('_', ' ')} (lockboard)")
        action.add_argument("compartment", help="'<board>-<lock>', e.g. 0-1")
        action.add_argument("--force", action="store_true", help="even if latched/closed")
    for name in ("close_door", "door_left_open"):
        actions.add_parser(name, help=f"{name.replace('_', ' ')} (lockboard)").add_argument(
            "compartment"
        )
    actions.add_parser("no_reply", help="stop/start answering").add_argument(
        "on", choices=["on", "off"]
    )
    actions.add_parser("slow_reply", help="delay replies").add_argument("ms", type=int)
    garbage = actions.add_parser("garbage", help="random bytes on the bus")
    garbage.add_argument("count", type=int)
    garbage.add_argument("--every", action="store_true", help="before every reply (0 = off)")
    actions.add_parser("bad_checksum", help="corrupt next N replies").add_argument(
        "count", type=int
    )
    stuck = actions.add_parser("stuck_lock", help="a lock that ignores unlocks")
    stuck.add_argument("compartment")
    stuck.add_argument("on", nargs="?", choices=["on", "off"], default="on")
    actions.add_parser("unplug", help="USB adapter out for N s").add_argument("seconds", type=float)
    actions.add_parser("scan", help="scanner: emit one line").add_argument("text")
    fault = actions.add_parser("fault", help="sensors: set a sensor fault")
    fault.add_argument("sensor")
    fault.add_argument("fault", choices=["none", "crc", "missing", "power_on"])
    return parser


def _ctl_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key in ("compartment", "ms", "count", "seconds", "text", "sensor", "fault"):
        if key in args:
            params[key] = getattr(args, key)
    if "force" in args:
        params["force"] = args.force
    if "every" in args:
        params["every"] = args.every
    if "on" in args:
        params["on"] = args.on == "on"
    return params


Served = tuple[SerialDevice, str | None, str]  # device, control socket, ready-line prefix


def _serve(*served: Served) -> int:
    """Run until SIGTERM/SIGINT; ready lines are printed last so callers can wait for them."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    started: list[SerialDevice] = []
    servers: list[ControlServer] = []
    try:
        for device, control, _ in served:
            device.start()
            started.append(device)
            if control:
                server = ControlServer(control, device.handle_control)
                server.start()
                servers.append(server)
        for device, control, ready in served:
            suffix = f" control={control}" if control else ""
            print(f"{ready} pty={device.pty_path}{suffix}")
            if isinstance(device, ScannerSim):
                threading.Thread(target=_pump_stdin, args=(device,), daemon=True).start()
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        for server in servers:
            server.stop()
        for device in started:
            device.stop()
    return 0


def _pump_stdin(scanner: ScannerSim) -> None:
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        if text:
            try:
                scanner.scan(text)
            except SimError as exc:
                print(f"scan refused: {exc}", file=sys.stderr)


def _sensor_lines(sim: SensorsSim) -> None:
    for spec in sim.scenario.sensors:
        where = (
            f"path={sim.w1_dir / spec.w1_id / 'w1_slave'}"
            if spec.kind == "w1"
            else f"unit={spec.unit}"
        )
        print(f"sensor id={spec.id} kind={spec.kind} zone={spec.zone} {where}")


def _locker(args: argparse.Namespace) -> int:
    """Lock board, sensors and scanner of one locker under one directory, for demos."""
    root = Path(args.dir)
    scenario = load_scenario(args.scenario or SCENARIOS / "steady.yaml")
    board = LockBoardSim(
        root / "ttyLOCK",
        boards=args.boards,
        polarity_closed_bit=args.polarity,
        door_open_delay=args.door_open_delay,
    )
    sensors = SensorsSim(scenario, w1_dir=root / "w1", modbus_link=root / "ttyMB")
    scanner = ScannerSim(root / "ttyQR")
    _sensor_lines(sensors)
    return _serve(
        (board, str(root / "lock.sock"), f"lockboard ready link={board.link}"),
        (sensors, str(root / "sensors.sock"), f"sensors ready modbus_link={sensors.link}"),
        (scanner, str(root / "scanner.sock"), f"scanner ready link={scanner.link}"),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser(SimSettings()).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        if args.command == "ctl":
            result = request(args.control, args.action, **_ctl_params(args))
            print(json.dumps(result, indent=2, sort_keys=True))
            return 0
        if args.command == "locker":
            return _locker(args)
        if args.command == "lockboard":
            board = LockBoardSim(
                args.link,
                boards=args.boards,
                locks=args.locks,
                polarity_closed_bit=args.polarity,
                door_open_delay=args.door_open_delay,
                auto_close=args.auto_close,
                seed=args.seed,
            )
            return _serve((board, args.control, f"lockboard ready link={args.link}"))
        if args.command == "sensors":
            sim = SensorsSim(
                load_scenario(args.scenario),
                w1_dir=args.w1_dir,
                modbus_link=args.modbus_link,
                interval=args.interval,
            )
            _sensor_lines(sim)
            return _serve((sim, args.control, f"sensors ready modbus_link={args.modbus_link}"))
        suffix = {"crlf": b"\r\n", "cr": b"\r", "lf": b"\n"}[args.suffix]
        scanner = ScannerSim(args.link, suffix=suffix)
        return _serve((scanner, args.control, f"scanner ready link={args.link}"))
    except SimError as exc:
        print(f"error {exc.code}: {exc}", file=sys.stderr)
        return 1
