"""One simulated locker for ``make demo``: a Kerong board and a scanner on ptys, plus the agent.

Drive it from another process through the simulators' control sockets::

    python -m firmware_sim ctl --control var/edge-demo/lockboard.sock place_item 0-1
    python -m firmware_sim ctl --control var/edge-demo/scanner.sock scan '*123456'

or in-process through the returned ``DemoLocker``. firmware_sim is imported only here: a
locker in the field never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.agent.main import EdgeRuntime
from edge.agent.settings import EdgeSettings, load_settings


@dataclass
class DemoLocker:
    settings: EdgeSettings
    runtime: EdgeRuntime
    board: Any  # firmware_sim.lockboard.LockBoardSim
    scanner: Any  # firmware_sim.scanner.ScannerSim
    controls: list[Any]
    workdir: Path

    def scan(self, text: str) -> None:
        """Hold a QR code (or type ``#code`` / ``*code``) in front of the scanner."""
        self.scanner.scan(text)

    def describe(self) -> dict[str, str]:
        return {
            "locker_id": self.settings.locker_id,
            "lockboard_link": str(self.board.link),
            "lockboard_control": str(self.workdir / "lockboard.sock"),
            "scanner_link": str(self.scanner.link),
            "scanner_control": str(self.workdir / "scanner.sock"),
            "state_db": str(self.settings.db_path),
            "boot_id": self.runtime.boot_id,
        }

    def stop(self) -> None:
        self.runtime.stop()
        for control in self.controls:
            control.stop()
        self.scanner.stop()
        self.board.stop()


def run_locker(
    locker_id: str,
    workdir: Path | str,
    *,
    mqtt_host: str = "127.0.0.1",
    mqtt_port: int = 1883,
    influx_url: str | None = None,
    pickup_public_key: str | None = None,
    boards: int = 1,
    locks: int = 16,
    auto_close: float | None = None,
    **overrides: Any,
) -> DemoLocker:
    """Start simulators and agent for one locker; returns once everything is running."""
    from firmware_sim.control import ControlServer
    from firmware_sim.lockboard import LockBoardSim
    from firmware_sim.scanner import ScannerSim

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    board = LockBoardSim(work / "lockbus", boards=boards, locks=locks, auto_close=auto_close)
    scanner = ScannerSim(work / "scanner")
    board.start()
    scanner.start()
    controls = [
        ControlServer(work / "lockboard.sock", board.handle_control),
        ControlServer(work / "scanner.sock", scanner.handle_control),
    ]
    for control in controls:
        control.start()
    settings = load_settings(
        None,
        locker_id=locker_id,
        state_dir=work / "state",
        mqtt_host=mqtt_host,
        mqtt_port=mqtt_port,
        serial_port=str(board.link),
        serial_boards=boards,
        serial_locks_per_board=locks,
        scanner_port=str(scanner.link),
        influx_url=influx_url,
        pickup_public_key=pickup_public_key,
        **overrides,
    )
    runtime = EdgeRuntime(settings).start()
    return DemoLocker(settings, runtime, board, scanner, controls, work)
