"""The Kerong serial worker against the simulated board on a real pty."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge.agent.errors import SerialLinkError, UnlockFailedError
from edge.agent.lockboard import KerongBoard
from firmware_sim.lockboard import LockBoardSim
from tests.edge.agent.support import wait_until


@pytest.fixture
def board(lockbus: LockBoardSim) -> Iterator[KerongBoard]:
    driver = KerongBoard(str(lockbus.link), reply_timeout_s=0.3, reopen_backoff_max_s=0.2).start()
    wait_until(driver.connected.is_set, what="port open")
    yield driver
    driver.close()


def test_unlock_is_confirmed_by_status_polling(lockbus: LockBoardSim, board: KerongBoard) -> None:
    assert board.read_status(1).hook_closed(5)
    board.unlock(1, 5, confirm_s=2, retries=0)
    assert not board.read_status(1).hook_closed(5)
    assert lockbus.unlock_count("1-5") == 1
    # the other locks of both boards were not touched
    assert all(board.read_status(0).hooks_closed)
    assert lockbus.unlock_count("0-5") == 0


def test_stuck_lock_fails_after_retries(lockbus: LockBoardSim, board: KerongBoard) -> None:
    lockbus.set_stuck("0-3")
    with pytest.raises(UnlockFailedError) as err:
        board.unlock(0, 3, confirm_s=0.3, retries=2)
    assert err.value.code == "UNLOCK_NOT_CONFIRMED"
    assert lockbus.unlock_count("0-3") == 3  # first try and two retries


def test_silent_board_gives_no_reply_code(lockbus: LockBoardSim, board: KerongBoard) -> None:
    lockbus.set_no_reply(True)
    with pytest.raises(UnlockFailedError) as err:
        board.unlock(0, 1, confirm_s=0.2, retries=1)
    assert err.value.code == "UNLOCK_NO_REPLY"
    with pytest.raises(SerialLinkError) as timeout:
        board.read_status(0)
    assert timeout.value.code == "SERIAL_TIMEOUT"
    lockbus.set_no_reply(False)
    assert board.read_status(0).board == 0


def test_garbage_and_bad_checksums_never_misparse(
    lockbus: LockBoardSim, board: KerongBoard
) -> None:
    lockbus.place_item("0-2", force=True)
    lockbus.set_garbage_every(23)
    for _ in range(30):
        lockbus.inject_garbage(50)
        status = board.read_status(0)
        # every status that came through says exactly what the board holds
        assert status.items_present[1] is True
        assert sum(status.items_present) == 1
        assert all(status.hooks_closed)
    lockbus.set_bad_checksum(3)
    failures = 0
    for _ in range(6):
        try:
            assert board.read_status(0).items_present[1]
        except SerialLinkError:
            failures += 1
    assert failures == 3  # the corrupted replies are dropped, never read as a status
    assert board.garbage_bytes > 0
    board.unlock(0, 2, confirm_s=2, retries=0)  # the bus still works


def test_unplugged_adapter_is_reopened(lockbus: LockBoardSim, board: KerongBoard) -> None:
    opened = board.reopen_count
    lockbus.unplug(1.0)
    with pytest.raises(SerialLinkError):
        board.read_status(0)

    def answers() -> bool:
        try:
            return board.read_status(0).board == 0
        except SerialLinkError:
            return False

    wait_until(answers, 15, "the board to answer after replug")
    assert board.reopen_count > opened


def test_polarity_closed_zero(tmp_path_factory: pytest.TempPathFactory) -> None:
    link = tmp_path_factory.mktemp("pol") / "bus"
    sim = LockBoardSim(link, boards=1, locks=8, polarity_closed_bit=0, door_open_delay=0.05)
    sim.start()
    driver = KerongBoard(str(link), polarity_closed_bit=0).start()
    try:
        assert all(driver.read_status(0).hooks_closed[:8])
        driver.unlock(0, 4, confirm_s=2, retries=0)
        hooks = driver.read_status(0).hooks_closed[:8]
        assert hooks == (True, True, True, False, True, True, True, True)
    finally:
        driver.close()
        sim.stop()
