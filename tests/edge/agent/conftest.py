"""Fixtures of the agent tests: a simulated lock bus on a real pty, keys, the platform client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.protocol.token import generate_keypair
from firmware_sim.lockboard import LockBoardSim
from firmware_sim.scanner import ScannerSim


@pytest.fixture
def lockbus(tmp_path: Path) -> Iterator[LockBoardSim]:
    sim = LockBoardSim(tmp_path / "lockbus", boards=2, locks=16, door_open_delay=0.05, seed=7)
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def scanner_sim(tmp_path: Path) -> Iterator[ScannerSim]:
    sim = ScannerSim(tmp_path / "scanner")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return generate_keypair()[0]
