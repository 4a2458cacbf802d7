"""The lock-board simulator over a real pty, spoken to with pyserial and edge.protocol."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from edge.protocol import kerong
from firmware_sim.control import ControlServer, request
from firmware_sim.errors import DeviceError, SimError
from firmware_sim.lockboard import LockBoardSim

DEADLINE = 5.0


def wait_for(check: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def read_frames(port: serial.Serial, count: int, timeout: float = DEADLINE) -> list[kerong.Frame]:
    decoder = kerong.FrameDecoder()
    frames: list[kerong.Frame] = []
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"got {len(frames)} of {count} frames")
        frames.extend(decoder.feed(port.read(port.in_waiting or 1)))
    return frames


def status(port: serial.Serial, board: int = 0, polarity: int = 1) -> kerong.BoardStatus:
    port.write(kerong.status_frame(board))
    return kerong.status_from_frame(read_frames(port, 1)[0], polarity)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[LockBoardSim]:
    board = LockBoardSim(tmp_path / "ttyLOCK", boards=2, locks=16, door_open_delay=0.05, seed=1)
    board.start()
    yield board
    board.stop()


@pytest.fixture
def port(sim: LockBoardSim) -> Iterator[serial.Serial]:
    with serial.Serial(str(sim.link), 19200, timeout=0.05) as handle:
        yield handle


def test_link_points_at_a_pty_and_is_removed_on_stop(tmp_path: Path) -> None:
    board = LockBoardSim(tmp_path / "dev" / "ttyX")
    board.start()
    assert board.link.is_symlink()
    assert str(board.link.resolve()).startswith("/dev/pts/")
    assert board.pty_path == str(board.link.resolve())
    board.stop()
    assert not board.link.exists()
    assert not board.link.is_symlink()


def test_fresh_board_reports_every_door_closed(port: serial.Serial) -> None:
    port.write(kerong.status_frame(0))
    (frame,) = read_frames(port, 1)
    assert frame.to_bytes() == bytes.fromhex("02 00 35 ff ff 00 00 03 38")
    assert all(status(port).hooks_closed)


def test_unlock_releases_hook_and_door_swings_open(sim: LockBoardSim, port: serial.Serial) -> None:
    port.write(kerong.unlock_frame(0, 3))
    (reply,) = read_frames(port, 1)
    answer = kerong.status_from_frame(reply)
    assert (reply.board, reply.lock) == (0, 3)  # the reply echoes the unlock's address
    assert answer.hook_closed(3) is False
    assert answer.hook_closed(2) is True
    wait_for(lambda: sim.get_state()["compartments"]["0-3"]["door"] == "open", "door open")
    assert status(port).hook_closed(3) is False
    sim.place_item("0-3")
    sim.close_door("0-3")
    after = status(port)
    assert after.hook_closed(3) is True
    assert after.item_present(3) is True
    assert sim.unlock_count("0-3") == 1


def test_second_board_and_status_all(sim: LockBoardSim, port: serial.Serial) -> None:
    port.write(kerong.unlock_frame(1, 16))
    read_frames(port, 1)
    port.write(kerong.status_all_frame())
    first, second = read_frames(port, 2)
    assert (first.board, second.board) == (0, 1)
    assert kerong.status_from_frame(second).hook_closed(16) is False
    assert all(kerong.status_from_frame(first).hooks_closed)


def test_frames_for_absent_boards_get_no_answer(sim: LockBoardSim, port: serial.Serial) -> None:
    port.write(kerong.status_frame(5) + kerong.unlock_frame(7, 1))
    port.write(kerong.status_frame(0))  # a marker that does get an answer
    (frame,) = read_frames(port, 1)
    assert frame.board == 0
    wait_for(lambda: sim.frames_received == 3, "three frames received")
    assert sim.replies_sent == 1


@pytest.mark.parametrize("polarity", [0, 1])
def test_polarity_setting(tmp_path: Path, polarity: int) -> None:
    board = LockBoardSim(tmp_path / "tty", polarity_closed_bit=polarity, door_open_delay=0.01)
    with board, serial.Serial(str(board.link), 19200, timeout=0.05) as port:
        port.write(kerong.unlock_frame(0, 1))
        (reply,) = read_frames(port, 1)
        raw_lock1 = reply.data[0] & 1
        assert raw_lock1 == (1 - polarity)  # lock 1 open: the bit is the "not closed" value
        assert reply.data[1] == (0xFF if polarity else 0x00)  # locks 9-16 closed
        decoded = kerong.status_from_frame(reply, polarity)
        assert decoded.hook_closed(1) is False
        assert all(decoded.hooks_closed[1:])


def test_physical_rules(sim: LockBoardSim) -> None:
    with pytest.raises(DeviceError) as info:
        sim.open_door("0-1")
    assert info.value.code == "LOCKED"
    with pytest.raises(DeviceError) as info:
        sim.place_item("0-1")
    assert info.value.code == "DOOR_CLOSED"
    with pytest.raises(DeviceError) as info:
        sim.close_door("3-1")
    assert info.value.code == "BAD_COMPARTMENT"
    sim.open_door("0-1", force=True)  # a crowbar: the agent should call this tamper
    sim.place_item("0-2", force=True)  # preloading for a test
    state = sim.get_state()["compartments"]
    assert state["0-1"] == {
        "door": "open",
        "latched": False,
        "item": False,
        "stuck": False,
        "unlocks": 0,
    }
    assert state["0-2"]["item"] is True


def test_stuck_lock_ignores_unlock(sim: LockBoardSim, port: serial.Serial) -> None:
    sim.set_stuck("0-4")
    port.write(kerong.unlock_frame(0, 4))
    (reply,) = read_frames(port, 1)
    assert kerong.status_from_frame(reply).hook_closed(4) is True
    assert sim.unlock_count("0-4") == 1
    assert sim.get_state()["compartments"]["0-4"]["door"] == "closed"
    sim.set_stuck("0-4", False)
    port.write(kerong.unlock_frame(0, 4))
    assert kerong.status_from_frame(read_frames(port, 1)[0]).hook_closed(4) is False


def test_garbage_is_injected_and_the_decoder_resyncs(
    sim: LockBoardSim, port: serial.Serial
) -> None:
    sim.inject_garbage(40)
    sim.set_garbage_every(7)
    decoder = kerong.FrameDecoder()
    frames: list[kerong.Frame] = []
    for _ in range(5):
        port.write(kerong.status_frame(0))
        deadline = time.monotonic() + DEADLINE
        count = len(frames)
        while len(frames) == count and time.monotonic() < deadline:
            frames.extend(decoder.feed(port.read(port.in_waiting or 1)))
    assert [f.to_bytes() for f in frames] == [bytes.fromhex("02 00 35 ff ff 00 00 03 38")] * 5
    assert decoder.discarded_bytes >= 40 + 5 * 7 - kerong.MAX_FRAME_LENGTH


def test_bad_checksum_on_next_replies(sim: LockBoardSim, port: serial.Serial) -> None:
    sim.set_bad_checksum(2)
    decoder = kerong.FrameDecoder()
    port.write(kerong.status_frame(0) + kerong.status_frame(1) + kerong.status_frame(0))
    frames: list[kerong.Frame] = []

    def got_frame() -> bool:
        frames.extend(decoder.feed(port.read(64)))
        return bool(frames)

    wait_for(got_frame, "a good frame")
    assert decoder.checksum_errors == 2
    assert [f.board for f in frames] == [0]


def test_no_reply_then_reply_again(sim: LockBoardSim, port: serial.Serial) -> None:
    sim.set_no_reply(True)
    port.write(kerong.status_frame(0))
    wait_for(lambda: sim.frames_received == 1, "the request to arrive")
    assert port.read(9) == b""
    sim.set_no_reply(False)
    assert all(status(port).hooks_closed)


def test_slow_reply_arrives_late(tmp_path: Path) -> None:
    # A frozen clock makes "not yet" certain instead of a race against the scheduler.
    now = [100.0]
    board = LockBoardSim(tmp_path / "tty", clock=lambda: now[0])
    with board, serial.Serial(str(board.link), 19200, timeout=0.05) as port:
        board.set_slow_reply(500)
        port.write(kerong.status_frame(0))
        wait_for(lambda: board.frames_received == 1, "the request to arrive")
        assert port.read(9) == b""
        assert board.replies_sent == 1  # queued, not yet on the wire
        now[0] += 0.25
        board.wake()
        assert port.read(9) == b""
        now[0] += 0.25
        board.wake()
        assert len(read_frames(port, 1)) == 1


def test_auto_close_and_door_left_open(tmp_path: Path) -> None:
    board = LockBoardSim(tmp_path / "tty", door_open_delay=0.01, auto_close=0.1)
    with board, serial.Serial(str(board.link), 19200, timeout=0.05) as port:
        port.write(kerong.unlock_frame(0, 1) + kerong.unlock_frame(0, 2))
        read_frames(port, 2)
        board.door_left_open("0-2")
        wait_for(lambda: board.get_state()["compartments"]["0-1"]["latched"], "auto close")
        state = board.get_state()["compartments"]
        assert state["0-2"]["door"] == "open"
        assert status(port).hook_closed(2) is False


def test_unplug_and_replug(sim: LockBoardSim, port: serial.Serial) -> None:
    assert all(status(port).hooks_closed)
    sim.unplug(0.3)
    assert not sim.plugged

    def poke() -> None:
        port.write(kerong.status_frame(0))
        port.read(9)

    with pytest.raises(serial.SerialException):
        poke()
    wait_for(lambda: sim.plugged and sim.link.is_symlink(), "the adapter to come back")
    port.close()
    with serial.Serial(str(sim.link), 19200, timeout=0.05) as again:
        assert all(status(again).hooks_closed)


def test_control_socket(sim: LockBoardSim, tmp_path: Path, port: serial.Serial) -> None:
    server = ControlServer(tmp_path / "lb.sock", sim.handle_control)
    server.start()
    try:
        sock = tmp_path / "lb.sock"
        with pytest.raises(SimError) as info:
            request(sock, "open_door", compartment="0-1")
        assert info.value.code == "LOCKED"
        with pytest.raises(SimError) as info:
            request(sock, "explode")
        assert info.value.code == "UNKNOWN_ACTION"
        with pytest.raises(SimError) as info:
            request(sock, "slow_reply", ms="fast")
        assert info.value.code == "BAD_REQUEST"
        request(sock, "stuck_lock", compartment="0-5", on=True)
        request(sock, "bad_checksum", count=1)
        request(sock, "garbage", count=3, every=True)
        state = request(sock, "get_state")
        assert state["compartments"]["0-5"]["stuck"] is True
        assert state["faults"] == {
            "no_reply": False,
            "slow_reply_ms": 0,
            "garbage_every": 3,
            "bad_checksum": 1,
        }
        request(sock, "unplug", seconds=0.1)
        wait_for(lambda: request(sock, "get_state")["plugged"], "replug via control")
    finally:
        server.stop()
    assert not (tmp_path / "lb.sock").exists()
    with pytest.raises(SimError) as info:
        request(tmp_path / "lb.sock", "get_state")
    assert info.value.code == "NOT_RUNNING"


def test_on_frame_hook_sees_every_request(tmp_path: Path) -> None:
    seen: list[tuple[int, int, int]] = []
    board = LockBoardSim(
        tmp_path / "tty",
        on_frame=lambda frame, at: seen.append((frame.cmd, frame.board, frame.lock)),
    )
    with board, serial.Serial(str(board.link), 19200, timeout=0.05) as port:
        port.write(kerong.unlock_frame(0, 7) + b"\x00\x02junk" + kerong.status_frame(0))
        read_frames(port, 2)
    assert seen == [(kerong.CMD_UNLOCK, 0, 7), (kerong.CMD_STATUS, 0, 1)]


def test_link_never_replaces_a_real_file(tmp_path: Path) -> None:
    precious = tmp_path / "ttyUSB0"
    precious.write_text("not ours")
    with pytest.raises(SimError) as info:
        LockBoardSim(precious).start()
    assert info.value.code == "LINK_EXISTS"
    assert precious.read_text() == "not ours"
    stale = tmp_path / "stale"
    stale.symlink_to("/dev/pts/does-not-exist")  # left behind by a kill -9
    board = LockBoardSim(stale)
    with board:
        assert str(stale.resolve()).startswith("/dev/pts/")
        assert stale.resolve().exists()
