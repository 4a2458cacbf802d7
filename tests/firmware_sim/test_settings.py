"""SIM_ environment variables set the simulator's defaults; flags still win."""

from __future__ import annotations

import pytest

from firmware_sim.cli import _build_parser
from firmware_sim.settings import SimSettings


def test_environment_sets_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_BOARDS", "3")
    monkeypatch.setenv("SIM_POLARITY", "closed=0")
    args = _build_parser(SimSettings(_env_file=None)).parse_args(["lockboard", "--link", "/x"])  # type: ignore[call-arg]
    assert (args.boards, args.polarity) == (3, 0)


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_BOARDS", "3")
    parser = _build_parser(SimSettings(_env_file=None))  # type: ignore[call-arg]
    assert parser.parse_args(["lockboard", "--link", "/x", "--boards", "2"]).boards == 2


def test_bad_environment_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIM_POLARITY", "upside-down")
    with pytest.raises(ValueError, match="polarity"):
        SimSettings(_env_file=None)  # type: ignore[call-arg]
