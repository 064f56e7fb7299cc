"""The supervised recovery's own state on its own: the back-EMF drive, upright by evidence,
the verdict that refuses it for good."""

from __future__ import annotations

import pytest

from controller.core.config import Config
from controller.core.limp_home import UPRIGHT_SWITCH_WINDOW_DEG
from controller.core.motion import SETTLE_DEG
from controller.core.recovery import (
    NO_LOAD_CURRENT_A,
    SUPERVISED_DUTY_MAX,
    SUPERVISED_SPEED_DPS,
)
from controller.core.supervised import Supervised

HW = Config().hardware


def supervised() -> Supervised:
    return Supervised(HW.motor_stall_current_a, HW.motor_no_load_speed_dps)


def current_for(duty: float, speed_dps: float) -> float:
    """What the gearmotor draws at ``duty`` turning at ``speed_dps`` (the odometer's model)."""
    return NO_LOAD_CURRENT_A + HW.motor_stall_current_a * abs(
        duty - speed_dps / HW.motor_no_load_speed_dps
    )


def test_on_the_angle_it_only_watches() -> None:
    sup = supervised()
    sup.begin_on_angle(0.0, 30.0)
    assert sup.emf is None and sup.watch is not None
    with pytest.raises(RuntimeError):
        sup.emf_duty()
    sup.end()
    assert sup.watch is None


def test_on_the_back_emf_the_speed_request_ramps_to_the_supervised_speed() -> None:
    sup = supervised()
    sup.begin_on_emf(0.0, load=0.1)
    assert sup.speed == 0.0
    for _ in range(200):
        sup.emf_step(0.0, 0.0, 0.01, switch_closed=False)
    assert sup.speed == -SUPERVISED_SPEED_DPS  # toward upright, after the supervised ramp
    assert abs(sup.emf_duty()) <= SUPERVISED_DUTY_MAX


def test_upright_by_the_switch_and_the_stretch_after_it() -> None:
    sup = supervised()
    sup.begin_on_emf(0.0, load=0.0)
    v = -SUPERVISED_SPEED_DPS
    duty = v / HW.motor_no_load_speed_dps
    for k in range(2000):
        closed = k >= 100  # the upright switch closes after 1 s
        if sup.emf_step(duty, current_for(duty, v), 0.01, switch_closed=closed):
            break
        assert sup.switch_travel is None or closed
    else:
        pytest.fail("never upright by evidence")
    emf = sup.emf
    assert emf is not None and sup.switch_travel is not None
    assert sup.switch_travel - emf.travel >= UPRIGHT_SWITCH_WINDOW_DEG - SETTLE_DEG


def test_a_recovery_that_went_the_wrong_way_is_refused_from_then_on() -> None:
    sup = supervised()
    sup.begin_on_angle(0.0, 30.0)
    verdict = None
    for k in range(1, 100):
        verdict = sup.judge(k * 0.01, 30.0 + 0.02 * k, 0.3)  # sinking toward inversion
        if verdict is not None:
            break
    assert verdict is not None and verdict.code == "supervised_wrong_way"
    assert sup.refused == verdict.reason
