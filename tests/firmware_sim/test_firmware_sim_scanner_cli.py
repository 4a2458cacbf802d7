"""The scanner simulator, and every simulator run as ``python -m firmware_sim`` processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

import firmware_sim
from edge.protocol import ds18b20, kerong, modbus
from firmware_sim.errors import SimError
from firmware_sim.scanner import ScannerSim

DEADLINE = 10.0
SCENARIOS = Path(firmware_sim.__file__).parent / "scenarios"


def read_line(port: serial.Serial) -> bytes:
    data = b""
    deadline = time.monotonic() + DEADLINE
    while not data.endswith(b"\r\n"):
        if time.monotonic() > deadline:
            pytest.fail(f"no full line, got {data!r}")
        data += port.read(1)
    return data


def test_scanner_emits_lines(tmp_path: Path) -> None:
    scanner = ScannerSim(tmp_path / "ttyQR")
    with scanner, serial.Serial(str(scanner.link), 9600, timeout=0.05) as port:
        scanner.scan("TBX1.abc.def")
        scanner.scan("123456")
        assert read_line(port) == b"TBX1.abc.def\r\n"
        assert read_line(port) == b"123456\r\n"
        with pytest.raises(SimError) as info:
            scanner.scan("two\nlines")
        assert info.value.code == "BAD_REQUEST"


def _start(args: list[str], **kwargs: object) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "firmware_sim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        **kwargs,  # type: ignore[call-overload]
    )
    lines: list[str] = []
    assert process.stdout is not None
    for line in process.stdout:  # the ready line is printed last; the pipe read blocks till then
        lines.append(line.strip())
        if " ready " in line:
            return process, lines
    process.kill()
    process.communicate()
    pytest.fail(f"simulator exited before ready: {lines}")


def _ctl(control: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "firmware_sim", "ctl", "--control", str(control), *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def _terminate(process: subprocess.Popen[str]) -> int | None:
    """SIGTERM, wait, and close the pipes; the exit code, or None if it had already ended."""
    already = process.poll()
    if already is None:
        process.send_signal(signal.SIGTERM)
    process.communicate(timeout=DEADLINE)
    return None if already is not None else process.returncode


@pytest.fixture
def lockboard(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path]]:
    link, control = tmp_path / "ttyLOCK", tmp_path / "lock.sock"
    process, lines = _start(
        [
            "lockboard",
            "--link",
            str(link),
            "--control",
            str(control),
            "--door-open-delay",
            "0.01",
            "--polarity",
            "closed=0",
            "--boards",
            "2",
        ]
    )
    assert lines[-1].startswith(f"lockboard ready link={link} pty=/dev/pts/")
    assert lines[-1].endswith(f"control={control}")
    yield process, link, control
    _terminate(process)


def test_lockboard_cli_and_ctl(lockboard: tuple[subprocess.Popen[str], Path, Path]) -> None:
    process, link, control = lockboard
    with serial.Serial(str(link), 19200, timeout=0.05) as port:
        port.write(kerong.unlock_frame(1, 2))
        decoder = kerong.FrameDecoder()
        frames: list[kerong.Frame] = []
        deadline = time.monotonic() + DEADLINE
        while not frames and time.monotonic() < deadline:
            frames = decoder.feed(port.read(9))
        assert kerong.status_from_frame(frames[0], polarity_closed_bit=0).hook_closed(2) is False
    refused = _ctl(control, "close_door", "9-9")
    assert refused.returncode == 1
    assert "BAD_COMPARTMENT" in refused.stderr
    assert _ctl(control, "stuck_lock", "0-3").returncode == 0
    assert _ctl(control, "slow_reply", "5").returncode == 0
    state = json.loads(_ctl(control, "get_state").stdout)
    assert state["polarity_closed_bit"] == 0
    assert state["compartments"]["0-3"]["stuck"] is True
    assert state["compartments"]["1-2"]["unlocks"] == 1
    assert state["faults"]["slow_reply_ms"] == 5
    assert _terminate(process) == 0
    assert not link.is_symlink()
    assert not control.exists()


def test_sensors_cli(tmp_path: Path) -> None:
    w1_dir, link, control = tmp_path / "w1", tmp_path / "ttyMB", tmp_path / "s.sock"
    process, lines = _start(
        [
            "sensors",
            "--w1-dir",
            str(w1_dir),
            "--modbus-link",
            str(link),
            "--scenario",
            str(SCENARIOS / "steady.yaml"),
            "--interval",
            "0.05",
            "--control",
            str(control),
        ]
    )
    try:
        paths = [line.split("path=")[1] for line in lines if "kind=w1" in line]
        assert len(paths) == 2
        assert ds18b20.parse_w1_slave(Path(paths[0]).read_text()) == 3.5
        with serial.Serial(str(link), 19200, timeout=0.05) as port:
            port.write(modbus.read_input_registers_request(1, 0, 2))
            reply = b""
            deadline = time.monotonic() + DEADLINE
            while len(reply) < 9 and time.monotonic() < deadline:
                reply += port.read(9 - len(reply))
        values = modbus.parse_read_input_registers_response(reply, 1, 2)
        assert modbus.decode_temperature_humidity(values) == (-20.0, 45.0)
        assert _ctl(control, "fault", "28-00000a1b2c3d", "crc").returncode == 0
        assert Path(paths[0]).read_text().splitlines()[0].endswith("NO")
    finally:
        assert _terminate(process) == 0
    assert not Path(paths[0]).exists()


def test_scanner_cli_stdin_and_control(tmp_path: Path) -> None:
    link, control = tmp_path / "ttyQR", tmp_path / "qr.sock"
    process, _ = _start(
        ["scanner", "--link", str(link), "--control", str(control)], stdin=subprocess.PIPE
    )
    try:
        with serial.Serial(str(link), 9600, timeout=0.05) as port:
            assert process.stdin is not None
            process.stdin.write("from-stdin\n")
            process.stdin.flush()
            assert read_line(port) == b"from-stdin\r\n"
            assert _ctl(control, "scan", "from-socket").returncode == 0
            assert read_line(port) == b"from-socket\r\n"
    finally:
        assert _terminate(process) == 0


def test_help_everywhere() -> None:
    for args in (
        [],
        ["lockboard"],
        ["sensors"],
        ["scanner"],
        ["ctl"],
        ["ctl", "--control", "x", "garbage"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "firmware_sim", *args, "--help"],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
            env={**os.environ},
        )
        assert result.returncode == 0, result.stderr
        assert "usage:" in result.stdout


def test_locker_runs_all_three(tmp_path: Path) -> None:
    process, lines = _start(["locker", "--dir", str(tmp_path / "sim")], stdin=subprocess.DEVNULL)
    try:
        ready = [line for line in lines if " ready " in line]
        assert ready[0].startswith("lockboard ready")  # _start returns at the first ready line
        assert process.stdout is not None
        ready += [process.stdout.readline().strip() for _ in range(2)]
        assert [line.split()[0] for line in ready] == ["lockboard", "sensors", "scanner"]
        root = tmp_path / "sim"
        for name in ("ttyLOCK", "ttyMB", "ttyQR"):
            assert (root / name).is_symlink()
        with serial.Serial(str(root / "ttyQR"), 9600, timeout=0.05) as port:
            assert _ctl(root / "scanner.sock", "scan", "hello").returncode == 0
            assert read_line(port) == b"hello\r\n"
        state = json.loads(_ctl(root / "lock.sock", "get_state").stdout)
        assert len(state["compartments"]) == 16
        assert json.loads(_ctl(root / "sensors.sock", "get_state").stdout)["sensors"]
    finally:
        assert _terminate(process) == 0
    assert not (tmp_path / "sim" / "ttyLOCK").is_symlink()
