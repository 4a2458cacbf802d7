"""The stream consumers' supervisor loop (`worker.streams.poll_until`), shared by
`tuanbox flash-orders` and `tuanbox group-joins`: a failing step is logged, the consumer told,
and retried after a pause that doubles per failure and resets after a success."""

from __future__ import annotations

import logging

import pytest

from tuanbox.worker.streams import poll_until


def test_a_failing_step_is_logged_retried_after_a_growing_pause_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outcomes = iter([False, False, True, False, True, True])  # False: the step raises
    steps: list[bool] = []
    pauses: list[float] = []
    failures: list[int] = []

    def step() -> None:
        ok = next(outcomes)
        steps.append(ok)
        if not ok:
            raise ConnectionError("redis went away")

    logger = logging.getLogger("tests.worker.streams")
    with caplog.at_level(logging.ERROR, logger=logger.name):
        poll_until(
            lambda: len(steps) == 6,
            step,
            what="test stream",
            after_failure=lambda: failures.append(len(steps)),
            logger=logger,
            sleep=pauses.append,
        )
    assert steps == [False, False, True, False, True, True]
    assert failures == [1, 2, 4]  # told after each failure, before its pause
    assert pauses == [0.1, 0.2, 0.1]  # doubled, then reset by the success between
    assert [r.getMessage() for r in caplog.records] == ["test stream step failed; retrying"] * 3
    assert all(r.exc_info for r in caplog.records)


def test_the_pause_is_capped_at_five_seconds() -> None:
    pauses: list[float] = []

    def step() -> None:
        raise TimeoutError

    poll_until(
        lambda: len(pauses) == 9,
        step,
        what="down",
        after_failure=lambda: None,
        sleep=pauses.append,
    )
    assert pauses[-3:] == [5.0, 5.0, 5.0] and max(pauses) == 5.0
