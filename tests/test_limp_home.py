"""Limp home on its own: the deadline, the upright switch as the last reference."""

from __future__ import annotations

import pytest

from controller.core.config import Config
from controller.core.limp_home import (
    LIMP_PAST_UPRIGHT_DEG,
    LIMP_TIMEOUT_MARGIN_S,
    UPRIGHT_SWITCH_WINDOW_DEG,
    LimpHome,
    Step,
)
from controller.core.monitor import Detection, Recovery, SafetyMonitor
from tests.test_machine import inputs

UP = -80.0


def monitor(position_untrusted: bool = True, frozen: bool = False) -> SafetyMonitor:
    mon = SafetyMonitor(Config())
    mon.position_untrusted = position_untrusted
    mon.sensors_frozen = frozen
    return mon


def test_the_deadline_is_the_ideal_time_with_a_margin() -> None:
    limp = LimpHome(UP)
    limp.begin(10.0, 0.0, 2.0, upright_switch=False)
    assert limp.deadline == pytest.approx(10.0 + 80.0 / 2.0 * 1.5 + LIMP_TIMEOUT_MARGIN_S)
    det = limp.step(limp.deadline + 0.01, inputs(-30.0), monitor(False))
    assert isinstance(det, Detection) and det.code == "limp_timeout"
    assert det.recovery is Recovery.HOLD


def test_with_a_trusted_sensor_the_usual_arrival_ends_it() -> None:
    limp = LimpHome(UP)
    limp.begin(0.0, 0.0, 2.0, upright_switch=False)
    assert limp.step(1.0, inputs(-30.0), monitor(False)) == Step.BY_ANGLE
    assert limp.goal(position_untrusted=False) == UP


def test_with_no_trusted_sensor_it_aims_past_upright_and_ends_on_the_switch() -> None:
    limp = LimpHome(UP)
    assert limp.goal(position_untrusted=True) == UP - LIMP_PAST_UPRIGHT_DEG
    limp.begin(0.0, -40.0, 1.5, upright_switch=False)
    mon = monitor()
    assert limp.step(1.0, inputs(-70.0, upright_switch=False), mon) == Step.DRIVING
    # The switch closes near upright: the readings there are remembered ...
    assert limp.step(2.0, inputs(-78.6, upright_switch=True), mon) == Step.DRIVING
    assert limp.switch_at == (-78.6, -78.6)
    # ... and the last stretch is measured from them.
    assert limp.step(2.5, inputs(-78.9, upright_switch=True), mon) == Step.DRIVING
    at = -78.6 - (UPRIGHT_SWITCH_WINDOW_DEG - 0.3) - 0.01
    assert limp.step(3.0, inputs(at, upright_switch=True), mon) == Step.AT_SWITCH


def test_the_travel_is_judged_by_the_sensor_that_moved_most() -> None:
    limp = LimpHome(UP)
    limp.begin(0.0, -40.0, 1.5, upright_switch=False)
    mon = monitor()
    limp.step(1.0, inputs(-78.6, secondary=-70.0, upright_switch=True), mon)
    # the secondary is stuck at -70; the primary moved on by the whole window
    step = limp.step(2.0, inputs(-78.6 - 1.25, secondary=-70.0, upright_switch=True), mon)
    assert step == Step.AT_SWITCH


def test_a_switch_closed_at_the_start_ends_it_at_once() -> None:
    limp = LimpHome(UP)
    limp.begin(0.0, -79.0, 1.5, upright_switch=True)
    assert limp.step(0.01, inputs(-79.0, upright_switch=True), monitor()) == Step.AT_SWITCH


def test_a_switch_closing_where_no_reading_is_near_upright_is_stuck() -> None:
    limp = LimpHome(UP)
    limp.begin(0.0, -20.0, 1.5, upright_switch=False)
    det = limp.step(1.0, inputs(-20.0, upright_switch=True), monitor())
    assert isinstance(det, Detection) and det.code == "upright_switch_stuck"
    # With both readings frozen the switch is the last evidence: believed.
    limp = LimpHome(UP)
    limp.begin(0.0, -20.0, 1.5, upright_switch=False)
    assert limp.step(1.0, inputs(-20.0, upright_switch=True), monitor(frozen=True)) == (
        Step.DRIVING
    )


def test_no_trusted_angle_and_no_trusted_switch_stops_automatic_motion() -> None:
    limp = LimpHome(UP)
    limp.begin(0.0, -20.0, 1.5, upright_switch=False)
    mon = monitor()
    mon.latched.add("upright_switch_stuck")
    det = limp.step(1.0, inputs(-30.0, upright_switch=False), mon)
    assert isinstance(det, Detection) and det.code == "no_upright_reference"
    assert det.recovery is Recovery.HOLD
