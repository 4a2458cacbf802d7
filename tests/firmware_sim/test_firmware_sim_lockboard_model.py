"""Stateful property test: random people, unlocks and time against the wire's status bits."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
import serial
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from edge.protocol import kerong
from firmware_sim.errors import DeviceError
from firmware_sim.lockboard import LockBoardSim

LOCKS = 4
DELAY = 1.0
compartments = st.sampled_from([f"0-{n}" for n in range(1, LOCKS + 1)])


class LockBoardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.dir = tempfile.TemporaryDirectory()
        self.sim = LockBoardSim(
            Path(self.dir.name) / "tty",
            locks=LOCKS,
            door_open_delay=DELAY,
            clock=lambda: self.now,
        )
        self.sim.start()
        self.port = serial.Serial(str(self.sim.link), 19200, timeout=0.05)
        self.decoder = kerong.FrameDecoder()
        # What a person could observe: doors opened by an unlock must eventually swing open.
        self.pending: dict[str, float] = {}

    def teardown(self) -> None:
        self.port.close()
        self.sim.stop()
        self.dir.cleanup()

    def _status(self) -> kerong.BoardStatus:
        self.port.write(kerong.status_frame(0))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            frames = self.decoder.feed(self.port.read(self.port.in_waiting or 1))
            if frames:
                assert len(frames) == 1
                return kerong.status_from_frame(frames[0])
        raise AssertionError("no status reply")

    @rule(compartment=compartments)
    def unlock(self, compartment: str) -> None:
        lock = int(compartment.split("-")[1])
        before = self.sim.get_state()["compartments"][compartment]
        self.port.write(kerong.unlock_frame(0, lock))
        deadline = time.monotonic() + 5
        frames: list[kerong.Frame] = []
        while not frames and time.monotonic() < deadline:
            frames = self.decoder.feed(self.port.read(self.port.in_waiting or 1))
        reply = kerong.status_from_frame(frames[0])
        assert reply.hook_closed(lock) is (before["stuck"] and before["latched"])
        if not before["stuck"] and before["door"] == "closed":
            self.pending.setdefault(compartment, self.now + DELAY)

    @rule(seconds=st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    def wait(self, seconds: float) -> None:
        self.now += seconds

    @rule(compartment=compartments)
    def close(self, compartment: str) -> None:
        self.sim.close_door(compartment)
        self.pending.pop(compartment, None)
        lock = int(compartment.split("-")[1])
        assert self._status().hook_closed(lock), "the hook re-latches as the door closes"

    @rule(compartment=compartments, force=st.booleans())
    def pull(self, compartment: str, force: bool) -> None:
        latched = self.sim.get_state()["compartments"][compartment]["latched"]
        if latched and not force:
            with pytest.raises(DeviceError, match="latched"):
                self.sim.open_door(compartment, force=force)
            return
        self.sim.open_door(compartment, force=force)
        self.pending.pop(compartment, None)

    @rule(compartment=compartments, present=st.booleans())
    def item(self, compartment: str, present: bool) -> None:
        door = self.sim.get_state()["compartments"][compartment]["door"]
        change = self.sim.place_item if present else self.sim.remove_item
        if door == "closed":
            with pytest.raises(DeviceError, match="door is closed"):
                change(compartment)
        else:
            change(compartment)

    @rule(compartment=compartments, stuck=st.booleans())
    def stick(self, compartment: str, stuck: bool) -> None:
        self.sim.set_stuck(compartment, stuck)

    @invariant()
    def wire_matches_physics(self) -> None:
        status = self._status()
        state = self.sim.get_state()["compartments"]
        for lock in range(1, LOCKS + 1):
            compartment = f"0-{lock}"
            door = state[compartment]
            assert status.hook_closed(lock) is door["latched"]
            assert status.item_present(lock) is door["item"]
            if door["door"] == "open":
                assert not door["latched"], "an open door cannot be latched"
            due = self.pending.get(compartment)
            if due is not None and self.now >= due:
                assert door["door"] == "open", f"{compartment} should have swung open"
        for lock in range(LOCKS + 1, 17):
            assert status.hook_closed(lock) is False  # unwired inputs read as open


TestLockBoardModel = LockBoardMachine.TestCase
TestLockBoardModel.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
