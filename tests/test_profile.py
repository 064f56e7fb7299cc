"""The motion profile: bounded speed and acceleration, no overshoot, near-ideal time
(property tests)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from controller.core.profile import CRUISE_BLEND, TrapezoidProfile, trapezoid_time

DT = 0.01
angles = st.floats(-90, 90)
speeds = st.floats(0.5, 15)
accels = st.floats(0.5, 30)


def run(p: TrapezoidProfile, max_steps: int = 200_000) -> list[tuple[float, float]]:
    out = [(p.pos, p.vel)]
    while not p.done and len(out) < max_steps:
        p.step(DT)
        out.append((p.pos, p.vel))
    assert p.done, "profile never finished"
    return out


@given(angles, angles, speeds, accels)
def test_rest_to_rest_is_bounded_and_never_overshoots(
    start: float, goal: float, vmax: float, amax: float
) -> None:
    p = TrapezoidProfile(start)
    p.set_goal(goal, vmax, amax)
    path = run(p)
    direction = 1.0 if goal >= start else -1.0
    for (_, v0), (x1, v1) in zip(path, path[1:], strict=False):
        assert abs(v1) <= vmax + 1e-9
        assert abs(v1 - v0) <= amax * DT * (1 + 1e-9)
        assert (x1 - goal) * direction <= 1e-9  # never past the goal
    assert path[-1] == (goal, 0.0)
    # Near time-optimal: the ideal trapezoid plus the cruise blend and a few ticks.
    assert (len(path) - 1) * DT <= trapezoid_time(
        goal - start, vmax, amax
    ) + 1 / CRUISE_BLEND + 5 * DT


@given(st.floats(-15, 15), angles, speeds, accels)
def test_replanning_from_motion_keeps_acceleration_bounded(
    v0: float, goal: float, vmax: float, amax: float
) -> None:
    p = TrapezoidProfile(0.0)
    p.vel = v0
    p.set_goal(goal, vmax, amax)
    path = run(p)
    for (_, a), (_, b) in zip(path, path[1:], strict=False):
        assert abs(b - a) <= amax * DT * (1 + 1e-9)
        assert abs(b) <= max(vmax, abs(v0)) + 1e-9


@given(speeds, accels, st.integers(1, 500))
def test_controlled_stop_decelerates_within_the_limit(vmax: float, amax: float, steps: int) -> None:
    p = TrapezoidProfile(0.0)
    p.set_goal(1000.0, vmax, amax)
    for _ in range(steps):
        p.step(DT)
    stop_from = p.pos
    p.stop()
    path = run(p)
    for (_, a), (_, b) in zip(path, path[1:], strict=False):
        assert abs(b - a) <= amax * DT * (1 + 1e-9)
        assert b >= 0.0  # a stop never reverses
    assert path[-1][0] >= stop_from


def test_trapezoid_time_cruise_and_triangle() -> None:
    assert math.isclose(trapezoid_time(140.0, 8.0, 8.0), 140 / 8 + 1.0)
    assert math.isclose(trapezoid_time(4.0, 8.0, 8.0), 2 * math.sqrt(4 / 8))
