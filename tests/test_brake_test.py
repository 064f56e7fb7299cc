"""The brake test on its own: time and angle passed in, no controller."""

from __future__ import annotations

import pytest

from controller.core.brake_test import (
    BRAKE_TEST_DUTY,
    BRAKE_TEST_MOVE_DEG,
    BRAKE_TEST_S,
    BrakeTest,
    Outcome,
)
from controller.core.monitor import Recovery

UP = -80.0


def run(angles: list[float], locked: bool = True, dt: float = 0.01) -> tuple[BrakeTest, list]:
    test = BrakeTest()
    test.start(0.0, UP)
    seen = []
    for k, angle in enumerate(angles, start=1):
        seen.append(test.step(k * dt, angle, locked))
        if seen[-1] is not None:
            break
    return test, seen


def test_a_brake_that_holds_passes_after_the_push_time() -> None:
    test, seen = run([UP + 0.05] * 100)
    assert seen[-1] == Outcome.PASSED and len(seen) == round(BRAKE_TEST_S / 0.01)
    assert all(s is None for s in seen[:-1])
    assert not test.running and test.duty == 0.0 and test.moved == pytest.approx(0.05)


def test_it_pushes_toward_inversion_only_while_it_runs() -> None:
    test = BrakeTest()
    assert test.duty == 0.0
    test.start(5.0, UP)
    assert test.running and test.duty == BRAKE_TEST_DUTY > 0.0
    test.cancel()
    assert not test.running and test.duty == 0.0


def test_it_stops_pushing_the_moment_the_table_moves() -> None:
    test, seen = run([UP, UP + 0.1, UP + BRAKE_TEST_MOVE_DEG + 0.01, UP])
    assert seen == [None, None, Outcome.FAILED]  # ended at once, well before the push time
    det = test.failure()
    assert det.code == "brake_test_failed" and det.recovery is Recovery.EMERGENCY_RETURN
    assert det.brake_slips and "moved 0.21 deg" in det.reason


def test_motion_either_way_counts() -> None:
    _, seen = run([UP - 0.3])
    assert seen == [Outcome.FAILED]


def test_no_push_without_the_ankle_lock_and_no_verdict() -> None:
    test, seen = run([UP], locked=False)
    assert seen == [Outcome.STOPPED] and not test.running and test.duty == 0.0


def test_stepping_without_a_running_test_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        BrakeTest().step(0.0, UP, True)
