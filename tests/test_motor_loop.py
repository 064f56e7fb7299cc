"""The position loop's load observer is bounded (issue 11, reproduction 3): a frozen angle
reading must not wind the duty up. The loop drives the simulator's physics directly here
(no controller, no monitor), so what is measured is the loop's own bound."""

from __future__ import annotations

import pytest

from controller.core.motor_loop import LoopGains, PositionLoop
from sim.physics import TableParams, TablePhysics

DT = 0.01
LIMIT = 4.0


def drive(
    mass: float,
    height: float,
    start: float,
    freeze_at: float | None,
    feed_current: bool,
    seconds: float = 8.0,
    speed: float = 3.75,
    denied: list[float] | None = None,
) -> tuple[list[float], list[float], PositionLoop]:
    """Track a ramp toward inversion at ``speed`` from ``start``; the measured angle freezes at
    ``freeze_at`` s. Returns the true speeds and duties after the brake-release phase
    (and appends ``denied_s`` per tick to ``denied``)."""
    ph = TablePhysics(TableParams(), mass, height, start)
    loop = PositionLoop()
    loop.reset(start, 0.0)
    speeds, duties = [], []
    measured = start
    for k in range(int(seconds / DT)):
        t = k * DT
        if freeze_at is None or t < freeze_at:
            measured = ph.angle
        setpoint = start + speed * t
        duty = loop.update(
            setpoint, speed, measured, DT, LIMIT, current_a=ph.current if feed_current else None
        )
        ph.advance(DT, 0.001, duty, True, False)
        if denied is not None:
            denied.append(loop.denied_s)
        if t >= 0.5:
            speeds.append(ph.vel)
            duties.append(duty)
    return speeds, duties, loop


@pytest.mark.parametrize(
    "mass,height,start", [(80.0, 178.0, 40.0), (136.0, 198.0, 30.0), (40.0, 147.0, 50.0)]
)
def test_normal_tracking_is_unchanged_by_the_current_bound(
    mass: float, height: float, start: float
) -> None:
    """With healthy sensors the bound never binds: the same duties, tick for tick."""
    _, with_current, loop = drive(mass, height, start, None, True)
    _, without, _ = drive(mass, height, start, None, False)
    assert with_current == without
    assert loop.current_bound is not None  # the bound was active, just never reached


@pytest.mark.parametrize(
    "mass,height,start", [(80.0, 178.0, 40.0), (136.0, 198.0, 30.0), (40.0, 147.0, 50.0)]
)
def test_a_frozen_reading_cannot_wind_the_duty_up(mass: float, height: float, start: float) -> None:
    """Both readings frozen at 2 s: the observer sees "no motion despite the duty". Fed the
    motor current, the load estimate stays on the torque's side and size: the true speed stays
    within the loop's own request (the limit) plus a few deg/s, far from the
    21.6 deg/s of issue 11; without the current, the plausibility bound alone caps the duty."""
    speeds, duties, _ = drive(mass, height, start, 2.0, True)
    assert max(speeds) < LIMIT + 3.5, max(
        speeds
    )  # measured 5.2, 5.4, 7.0 (a load near zero: no sign to hold)
    assert max(duties) < 0.5, max(duties)
    speeds_nc, duties_nc, _ = drive(mass, height, start, 2.0, False)
    assert max(duties_nc) <= LIMIT / 20.0 + LoopGains().load_max + 1e-9
    assert max(speeds) < max(speeds_nc)


def test_the_old_unbounded_observer_did_wind_up() -> None:
    """The reproduction itself: with the old bound (0.8) and no current the duty winds up
    toward saturation (so the tests above can fail)."""
    ph = TablePhysics(TableParams(), 80.0, 178.0, 40.0)
    loop = PositionLoop(LoopGains(load_max=0.8))
    loop.reset(40.0, 0.0)
    measured, top = 40.0, 0.0
    for k in range(800):
        t = k * DT
        if t < 2.0:
            measured = ph.angle
        duty = loop.update(40.0 + 3.75 * t, 3.75, measured, DT, LIMIT)
        ph.advance(DT, 0.001, duty, True, False)
        top = max(top, ph.vel)
    assert top > 15.0


def test_the_bound_is_off_during_the_brake_release_and_without_a_current() -> None:
    loop = PositionLoop()
    loop.reset(0.0, 0.3)
    loop.update(0.0, 0.0, 0.0, DT, LIMIT, current_a=0.0)  # held brake's current: 0 A
    assert loop.current_bound is None and abs(loop.load) > 0.25  # the prior is not cut
    fresh = PositionLoop()
    fresh.reset(0.0, 0.0)
    for _ in range(100):
        fresh.update(0.0, 0.0, 0.0, DT, LIMIT)
    assert fresh.current_bound is None


@pytest.mark.parametrize(
    "mass,height,start", [(80.0, 178.0, 40.0), (136.0, 198.0, 30.0), (40.0, 147.0, 50.0)]
)
def test_a_binding_current_bound_is_reported_for_the_monitor(
    mass: float, height: float, start: float
) -> None:
    """``denied_s``: never with healthy sensors; within a second of frozen readings it has
    bound for 0.3 s without a break (the monitor's evidence of frozen readings)."""
    healthy: list[float] = []
    drive(mass, height, start, None, True, denied=healthy)
    assert max(healthy) == 0.0
    frozen: list[float] = []
    drive(mass, height, start, 2.0, True, denied=frozen)
    assert max(frozen[:200]) == 0.0  # before the freeze
    assert max(frozen[200:300]) >= 0.3, max(frozen[200:300])
