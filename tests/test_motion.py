"""Motion planning on its own: paces, load priors, settling, the slow-down re-plan."""

from __future__ import annotations

import pytest

from controller.core.config import Config
from controller.core.motion import (
    LIMP_PLAN_FRACTION,
    SETTLE_DEG,
    SETTLE_TIMEOUT_S,
    SLOW_DOWN_FACTOR,
    SLOW_DOWN_S,
    SPEED_MARGIN_DPS,
    Motion,
    Pace,
)
from controller.core.recovery import SUPERVISED_ACCEL_DPS2, SUPERVISED_SPEED_DPS

CFG = Config()
UP = CFG.limits.upright_deg


def test_each_pace_plans_below_its_limit() -> None:
    m = CFG.motion
    for pace, vmax, amax in (
        (Pace.NORMAL, m.max_speed_dps, m.max_accel_dps2),
        (Pace.EMERGENCY, m.emergency_speed_dps, m.emergency_accel_dps2),
        (Pace.SUPERVISED, SUPERVISED_SPEED_DPS, SUPERVISED_ACCEL_DPS2),
    ):
        motion = Motion(CFG)
        motion.move_to(0.0, UP, pace)
        assert (motion.speed_limit, motion.accel_limit) == (vmax, amax)
        assert motion.profile.vmax == max(vmax - SPEED_MARGIN_DPS, 0.7 * vmax) < vmax
    limp = Motion(CFG)
    limp.move_to(0.0, UP, Pace.LIMP)
    assert limp.profile.vmax == LIMP_PLAN_FRACTION * limp.speed_limit


def test_a_target_is_clamped_to_the_envelope() -> None:
    motion = Motion(CFG)
    motion.move_to(CFG.limits.max_angle_deg + 30.0, UP)
    assert motion.profile.goal == CFG.limits.max_angle_deg
    motion.move_to(UP - 30.0, UP)
    assert motion.profile.goal == UP


def test_the_first_release_at_upright_uses_the_upright_prior_then_the_last_estimate() -> None:
    motion = Motion(CFG)
    assert not motion.tracking and motion.setpoint(UP) == UP
    motion.move_to(0.0, UP)
    assert motion.tracking and motion.loop.load == motion.loop.gains.upright_load_prior > 0
    off = Motion(CFG)
    off.move_to(0.0, -20.0)
    assert off.loop.load == 0.0  # off upright the sign of gravity's pull depends on the user
    motion.loop.load = 0.12
    motion.engage_brake(-40.0, trusted=True)
    assert motion.trusted_load == 0.12 and motion.braked_angle == -40.0 and not motion.tracking
    motion.move_to(0.0, -40.0)
    assert motion.loop.load == 0.12


def test_an_untrusted_stop_keeps_the_last_trusted_load() -> None:
    motion = Motion(CFG)
    motion.move_to(0.0, UP)
    motion.loop.load = 0.3  # wound up against a fault
    motion.engage_brake(-50.0, trusted=False)
    assert motion.trusted_load == 0.0
    motion.restart(UP, -50.0, Pace.SUPERVISED, load=0.07)
    assert motion.tracking and motion.loop.load == 0.07 and motion.speed_limit == 2.0


def test_settled_at_the_goal_or_after_the_timeout() -> None:
    motion = Motion(CFG)
    assert motion.settled(UP, 0.0)  # on the brake
    motion.move_to(UP + 1.0, UP)
    t = 0.0
    while motion.done_t is None:
        t += 0.01
        motion.step(0.01, t)
    assert motion.settled(UP + 1.0 - SETTLE_DEG / 2, t)
    assert not motion.settled(UP + 5.0, t)  # the table is not there yet ...
    assert motion.settled(UP + 5.0, t + SETTLE_TIMEOUT_S + 0.01)  # ... the profile long done


def test_a_controlled_stop_decelerates_to_rest() -> None:
    motion = Motion(CFG)
    motion.move_to(0.0, UP)
    for k in range(200):
        motion.step(0.01, k * 0.01)
    assert motion.profile.vel > 0
    motion.stop()
    assert motion.profile.goal > motion.profile.pos and motion.done_t is None
    for k in range(200, 600):
        motion.step(0.01, k * 0.01)
    assert motion.profile.done


def test_a_late_tick_replans_the_same_motion_from_rest() -> None:
    motion = Motion(CFG)
    motion.move_to(0.0, UP)
    for k in range(100):
        motion.step(0.01, k * 0.01)
    goal, vmax, amax = motion.profile.goal, motion.profile.vmax, motion.profile.amax
    motion.replan_from_rest(-75.0)
    p = motion.profile
    assert (p.pos, p.vel, p.goal, p.vmax, p.amax) == (-75.0, 0.0, goal, vmax, amax)


def test_a_return_at_full_duty_is_replanned_slower_while_it_comes_up() -> None:
    motion = Motion(CFG)
    motion.move_to(UP, 40.0, Pace.EMERGENCY)
    vmax = motion.profile.vmax
    assert motion.adapt_to_torque(0.0, 40.0, 0.97) is None  # the watch starts
    assert motion.adapt_to_torque(SLOW_DOWN_S / 2, 39.9, 0.97) is None
    slower = motion.adapt_to_torque(SLOW_DOWN_S, 39.8, 0.97)
    assert slower == pytest.approx(SLOW_DOWN_FACTOR * vmax) and motion.profile.vmax == slower
    assert motion.profile.pos == 39.8  # the setpoint waits for the table
    assert motion.adapt_to_torque(1.0, 39.0, 0.5) is None and motion.slow_down_t is None


def test_a_motion_away_from_upright_is_never_slowed_down() -> None:
    motion = Motion(CFG)
    motion.move_to(40.0, 0.0)
    for t in (0.0, 0.5, 1.0):
        assert motion.adapt_to_torque(t, 0.0, 0.99) is None
    assert motion.slow_down_t is None


def test_drive_follows_the_profile() -> None:
    motion = Motion(CFG)
    motion.move_to(0.0, UP)
    duty = []
    for k in range(50):
        motion.step(0.01, k * 0.01)
        duty.append(motion.drive(motion.profile.pos, 0.01, None))
    assert all(-1.0 <= d <= 1.0 for d in duty) and duty[-1] > 0.0  # toward inversion
